//! `routes![a, b]`: a `Routes` list of attribute-defined handlers.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Token;
use syn::parse::Parser;
use syn::punctuated::Punctuated;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let paths = match Punctuated::<syn::Path, Token![,]>::parse_terminated.parse2(input) {
        Ok(p) => p,
        Err(e) => return e.into_compile_error(),
    };
    let adds = paths.iter().map(|p| quote!(.handler::<#p, _, _>(#p)));
    quote!(::rrssh::routing::Routes::new() #(#adds)*)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_handler_by_type_and_value() {
        let out = expand(quote!(a, m::b,)).to_string();
        assert_eq!(
            out,
            ":: rrssh :: routing :: Routes :: new () . handler :: < a , _ , _ > (a) . handler :: < m :: b , _ , _ > (m :: b)"
        );
    }

    #[test]
    fn rejects_non_paths() {
        let out = expand(quote!(1 + 2)).to_string();
        assert!(out.contains("compile_error"), "{out}");
    }
}
