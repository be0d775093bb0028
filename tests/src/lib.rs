//! Integration tests for rrssh.
