//! Compile-pass and compile-fail cases for the route attributes.

#[test]
fn route_attributes() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
