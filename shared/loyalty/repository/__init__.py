"""All DynamoDB access lives in this package; nothing else imports boto3 for the table."""
