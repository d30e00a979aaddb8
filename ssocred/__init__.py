"""ssocred: AWS IAM Identity Center (AWS SSO) credentials for every SDK, from the OS keyring.

This module stays empty on purpose: ``ssocred process`` imports it on every call.
"""

__version__ = "0.1.0"
