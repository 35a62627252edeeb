"""The one error the kernel lab raises: something about the lab itself failed."""


class LabError(Exception):
    """The lab could not be provisioned or the guest kernel did not run.

    The message is one line, fit to print as is after ``kernel-lab:``.
    """
