//! The compile-pass and compile-fail cases of rrssh's route attributes and `#[rrssh::api]`
//! traits live in `tests/ui/{pass,fail}`, one mistake per file; `tests/ui.rs` runs them.
