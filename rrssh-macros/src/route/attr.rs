//! Parsing the attribute's arguments: `("/path", scope = "x", state = T)` or
//! `(METHOD, "/path", …)` for `#[route]`.

use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token, Type};

pub(crate) struct RouteArgs {
    /// Set for `#[route(METHOD, …)]`.
    pub(crate) method: Option<(String, proc_macro2::Span)>,
    pub(crate) path: LitStr,
    pub(crate) scope: Option<LitStr>,
    pub(crate) state: Option<Type>,
}

pub(crate) fn parse(with_method: bool, input: ParseStream<'_>) -> syn::Result<RouteArgs> {
    let method = if with_method {
        let m = if input.peek(LitStr) {
            let l: LitStr = input.parse()?;
            (l.value(), l.span())
        } else {
            let i: Ident = input.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected a method first: `#[route(OPTIONS, \"/path\")]`",
                )
            })?;
            (i.to_string(), i.span())
        };
        if m.0.is_empty()
            || !m
                .0
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(syn::Error::new(
                m.1,
                "a method is a token such as `GET` or `OPTIONS`",
            ));
        }
        input.parse::<Token![,]>()?;
        Some(m)
    } else {
        None
    };
    if input.is_empty() {
        return Err(input.error("expected the route path: `#[get(\"/users/{id}\")]`"));
    }
    let path: LitStr = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the route path as a string literal: `\"/users/{id}\"`",
        )
    })?;
    let mut args = RouteArgs {
        method,
        path,
        scope: None,
        state: None,
    };
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        match key.to_string().as_str() {
            "scope" => args.scope = Some(input.parse()?),
            "state" => args.state = Some(input.parse()?),
            other => {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown route option `{other}`; expected `scope = \"…\"` or `state = Type`"
                    ),
                ));
            }
        }
    }
    Ok(args)
}

pub(crate) struct WithMethod(pub(crate) RouteArgs);
pub(crate) struct WithoutMethod(pub(crate) RouteArgs);

impl Parse for WithMethod {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        parse(true, input).map(WithMethod)
    }
}

impl Parse for WithoutMethod {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        parse(false, input).map(WithoutMethod)
    }
}
