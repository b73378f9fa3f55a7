"""The short form of a failed run: Terraform's diagnostic summaries with their addresses."""

from provisioning.terraform.diagnostics import diagnostic_summaries, failure_summary

LOG = """module.kms_key.aws_kms_key.this: Destruction complete after 0s
\x1b[31m╷\x1b[0m
\x1b[31m│\x1b[0m \x1b[1mError: \x1b[0mdeleting S3 Bucket (demo--orders--invoices): \
operation error S3: DeleteBucket, https response error StatusCode: 409, BucketNotEmpty\x1b[0m
\x1b[31m│\x1b[0m
\x1b[31m│\x1b[0m \x1b[0m
\x1b[31m│\x1b[0m with module.s3_bucket["invoices"].aws_s3_bucket.this,
\x1b[31m│\x1b[0m   on ../../modules/s3-bucket/main.tf line 1:
\x1b[31m╵\x1b[0m
"""


def test_the_summary_and_address_come_out_of_a_coloured_log():
    [diagnostic] = diagnostic_summaries(LOG)
    assert diagnostic["summary"].startswith("deleting S3 Bucket (demo--orders--invoices)")
    assert diagnostic["summary"].endswith("BucketNotEmpty")
    assert diagnostic["address"] == 'module.s3_bucket["invoices"].aws_s3_bucket.this'


def test_without_diagnostics_the_first_line_of_the_error_stands():
    summary = failure_summary(error="Pre-flight: the name is taken.\nmore", log="plan output")
    assert summary == [{"summary": "Pre-flight: the name is taken.", "address": ""}]
    assert failure_summary(error="", log="") == []
