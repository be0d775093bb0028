//! The schema function of a route: what the OpenAPI document says of its inputs and output,
//! read from the types as written (`Path<T>`, `Params<Q>`, `Json<B>`, `String`, `Bytes`; the
//! output through `Result<R, E>`, `(StatusCode, R)`, `Json<T>`, `JsonStream<T>`, …). Each type's
//! schema is probed at compile time: `schemars::JsonSchema` if it has it, open otherwise.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{GenericArgument, PathArguments, Type};

use super::sig::{Kind, Signature, first_generic, last_segment};

fn probe(ty: &Type) -> TokenStream {
    quote!((&::rrssh::__private::schema::Probe::<#ty>::new()).schema(__c))
}

fn generics(ty: &Type) -> Vec<&Type> {
    let Some(seg) = last_segment(ty) else {
        return Vec::new();
    };
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The output shape of `ty`, and whether the handler picks its status.
fn output(ty: &Type, any_status: bool) -> (TokenStream, bool) {
    let shape = quote!(::rrssh::__private::schema::OutputShape);
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => return (quote!(#shape::Empty), any_status),
        Type::Tuple(t) if t.elems.len() >= 2 => {
            if let Some(last) = t.elems.last() {
                return output(last, true);
            }
        }
        Type::Reference(r) => return output(&r.elem, any_status),
        Type::Paren(p) => return output(&p.elem, any_status),
        _ => {}
    }
    let Some(seg) = last_segment(ty) else {
        return (quote!(#shape::Unknown), any_status);
    };
    let g = generics(ty);
    match seg.ident.to_string().as_str() {
        "Result" if !g.is_empty() => output(g[0], any_status),
        "Json" if !g.is_empty() => {
            let p = probe(g[0]);
            (quote!(#shape::Json(#p)), any_status)
        }
        "JsonStream" if !g.is_empty() => {
            let p = probe(g[0]);
            (quote!(#shape::Stream(#p)), any_status)
        }
        "String" | "str" => (quote!(#shape::Text), any_status),
        "Bytes" | "ByteStream" => (quote!(#shape::Bytes), any_status),
        "StatusCode" => (quote!(#shape::Empty), true),
        _ => (quote!(#shape::Unknown), any_status),
    }
}

/// `fn __rrssh_schemas(c) -> RouteSchemas` for a handler's signature.
pub(crate) fn schema_fn(sig: &Signature) -> TokenStream {
    let mut path = quote!(::core::option::Option::None);
    let mut path_items = Vec::new();
    let mut query = quote!(::core::option::Option::None);
    let body_shape = quote!(::rrssh::__private::schema::BodyShape);
    let mut body = quote!(#body_shape::None);
    for a in &sig.args {
        let inner = last_segment(&a.ty).and_then(first_generic);
        match (a.kind, inner) {
            (Kind::Path, Some(t)) => {
                path = probe(t);
                if let Type::Tuple(tt) = t {
                    path_items = tt.elems.iter().map(probe).collect();
                }
            }
            (Kind::Params, Some(t)) => query = probe(t),
            (Kind::Json, Some(t)) => {
                let p = probe(t);
                body = quote!(#body_shape::Json(#p));
            }
            (Kind::RawBody, _) => {
                let is_text = last_segment(&a.ty).is_some_and(|s| s.ident == "String");
                body = if is_text {
                    quote!(#body_shape::Text)
                } else {
                    quote!(#body_shape::Bytes)
                };
            }
            _ => {}
        }
    }
    let (out, any_status) = if sig.opaque_output {
        (
            quote!(::rrssh::__private::schema::OutputShape::Unknown),
            false,
        )
    } else {
        output(&sig.output, false)
    };
    quote! {
        #[doc(hidden)]
        #[allow(unused_imports, clippy::all)]
        pub fn __rrssh_schemas(
            __c: &mut ::rrssh::__private::schema::Collector,
        ) -> ::rrssh::__private::schema::RouteSchemas {
            use ::rrssh::__private::schema::{NoSchema as _, ViaSchema as _};
            ::rrssh::__private::schema::RouteSchemas {
                path: #path,
                path_items: ::std::vec![#(#path_items),*],
                query: #query,
                body: #body,
                output: #out,
                any_status: #any_status,
            }
        }
    }
}
