"""The Outsourcing Advisor: a dialogue engine, its advice and its store, with thin channels on top."""


class AdvisorError(Exception):
    """A problem a person running the advisor can act on: a broken dialog file, an unusable database.

    The message is one line meant to be printed as it is, without a traceback.
    """


__version__ = "0.1.0"
