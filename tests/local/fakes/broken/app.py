"""A handler module that cannot be imported: the stack must answer 500 and keep serving."""

import loyalty_module_that_does_not_exist  # noqa: F401
