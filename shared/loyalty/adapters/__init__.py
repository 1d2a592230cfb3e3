"""Every AWS client and outbound connection: DynamoDB, SQS, S3, SES clients (aws.py), queue sends,
S3 uploads, e-mail, webhook HTTP. Nothing outside this package creates a boto3 client."""
