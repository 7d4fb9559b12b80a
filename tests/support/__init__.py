"""Helpers the tests share: in-process Kedro sessions, local servers."""
