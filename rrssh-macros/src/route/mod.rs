//! The route attributes: `#[get("/path")]` and friends.
//!
//! Each emits, next to the user's function (unchanged):
//! - a braced marker struct with the function's name (type namespace only, so the function
//!   stays callable), implementing `::rrssh::routing::RouteDef`;
//! - `NAME::call(&client, args…)`, the typed client call;
//! - never-called checks, spanned on each argument and on the return type, so that a type
//!   that is not an extractor or a response is reported where it is written.

mod attr;
mod path;
mod schema;
pub(crate) mod sig;

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, LitStr};

pub(crate) use self::sig::{Kind, Signature};

/// Expands a route attribute. `method` is `None` for `#[route(METHOD, "/path")]`.
pub(crate) fn expand(method: Option<&str>, args: TokenStream, item: TokenStream) -> TokenStream {
    let out = expand_inner(method, args, item);
    if std::env::var_os("RRSSH_MACROS_DEBUG").is_some() {
        eprintln!("{out}");
    }
    out
}

fn expand_inner(method: Option<&str>, args: TokenStream, item: TokenStream) -> TokenStream {
    let item: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(e.span(), "route attributes go on an `async fn`");
            let mut out = item;
            out.extend(e.into_compile_error());
            return out;
        }
    };
    let mut errors = Vec::new();
    let generated = route_items(method, args, &item, &mut errors)
        .map(|g| g.items)
        .unwrap_or_default();
    let errors = errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    });
    let errors = errors.map(syn::Error::into_compile_error);
    quote!(#item #generated #errors)
}

/// What a route attribute generated for a handler.
pub(crate) struct Generated {
    /// The marker, its `RouteDef`, `call`, the checks.
    pub(crate) items: TokenStream,
    pub(crate) sig: Signature,
    pub(crate) method: String,
    pub(crate) path: String,
}

/// What a route attribute generates for `item`, or `None` after errors (pushed to `errors`).
pub(crate) fn route_items(
    method: Option<&str>,
    args: TokenStream,
    item: &ItemFn,
    errors: &mut Vec<syn::Error>,
) -> Option<Generated> {
    let before = errors.len();
    let args = match method {
        Some(_) => syn::parse2::<attr::WithoutMethod>(args).map(|a| a.0),
        None => syn::parse2::<attr::WithMethod>(args).map(|a| a.0),
    };
    let args = match args {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let sig = sig::analyze(item, errors);
    let args = args?;
    let method = match method {
        Some(m) => m.to_owned(),
        None => args
            .method
            .as_ref()
            .map(|m| m.0.to_uppercase())
            .unwrap_or_default(),
    };
    match path::parse(&args.path.value()) {
        Ok(captures) => check_captures(item, &sig, &captures, &args.path, errors),
        Err(e) => errors.push(syn::Error::new(
            args.path.span(),
            e.render(&args.path.value()),
        )),
    }
    if errors.len() > before {
        return None;
    }
    Some(Generated {
        items: codegen(item, &sig, &method, &args),
        sig,
        path: args.path.value(),
        method,
    })
}

/// The typed call's arguments, in path, query, body order.
pub(crate) fn wire_params(sig: &Signature) -> Vec<&sig::WireArg> {
    let mut wire = Vec::new();
    for kind in [Kind::Path, Kind::Params, Kind::Json, Kind::RawBody] {
        for a in sig.args.iter().filter(|a| a.kind == kind) {
            wire.extend(a.wire.iter());
        }
    }
    wire
}

fn check_captures(
    item: &ItemFn,
    sig: &Signature,
    captures: &[path::Capture],
    lit: &LitStr,
    errors: &mut Vec<syn::Error>,
) {
    let path_arg = item
        .sig
        .inputs
        .iter()
        .zip(&sig.args)
        .find(|(_, a)| a.kind == Kind::Path);
    match (captures.is_empty(), path_arg) {
        (false, None) => {
            let names: Vec<String> = captures.iter().map(|c| format!("`{{{}}}`", c.name)).collect();
            let first = &captures[0].name;
            errors.push(syn::Error::new(
                lit.span(),
                format!(
                    "the path captures {} but the handler has no `Path` argument\n  help: add `Path({first}): Path<T>`",
                    names.join(", ")
                ),
            ));
        }
        (true, Some((input, _))) => errors.push(syn::Error::new(
            input.span(),
            format!("`Path` argument, but the route `{}` has no `{{capture}}`: remove it or add one to the path", lit.value()),
        )),
        _ => {}
    }
}

/// The first paragraph of the doc comments.
fn summary(item: &ItemFn) -> Option<String> {
    let mut lines = Vec::new();
    for attr in &item.attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        let syn::Meta::NameValue(nv) = &attr.meta else {
            continue;
        };
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) = &nv.value
        else {
            continue;
        };
        let line = s.value();
        let line = line.trim();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(line.to_owned());
    }
    (!lines.is_empty()).then(|| lines.join(" "))
}

fn type_text(ty: &impl ToTokens) -> String {
    let text = ty.to_token_stream().to_string();
    text.replace(" < ", "<")
        .replace(" <", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace("& ", "&")
}

fn codegen(item: &ItemFn, sig: &Signature, method: &str, args: &attr::RouteArgs) -> TokenStream {
    let vis = &item.vis;
    let name = &item.sig.ident;
    let name_str = name.to_string();
    let path = args.path.value();
    let summary = match summary(item) {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    };
    let scope = match &args.scope {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    };
    let output = &sig.output;
    let response_ty = if sig.opaque_output {
        quote!(::rrssh::Response)
    } else {
        output.to_token_stream()
    };
    let output_text = type_text(output);

    // Client arguments, in path, query, body order.
    let mut wire: Vec<(&sig::Arg, &sig::WireArg)> = Vec::new();
    for kind in [Kind::Path, Kind::Params, Kind::Json, Kind::RawBody] {
        for a in sig.args.iter().filter(|a| a.kind == kind) {
            wire.extend(a.wire.iter().map(|w| (a, w)));
        }
    }
    let arg_infos = wire.iter().map(|(a, w)| {
        let kind = match a.kind {
            Kind::Path => quote!(Path),
            Kind::Params => quote!(Params),
            Kind::Json => quote!(Json),
            _ => quote!(Body),
        };
        let n = w.name.to_string();
        let t = type_text(&w.ty);
        quote!(::rrssh::routing::ArgInfo { name: #n, kind: ::rrssh::routing::ArgKind::#kind, ty: #t })
    });
    let params = wire.iter().map(|(_, w)| {
        let (n, t) = (&w.name, &w.ty);
        quote!(#n: #t)
    });
    let mut steps = Vec::new();
    for a in &sig.args {
        let names: Vec<_> = a.wire.iter().map(|w| &w.name).collect();
        let value = match names.as_slice() {
            [] => continue,
            [one] => quote!(#one),
            many => quote!((#(#many),*)),
        };
        steps.push(match a.kind {
            Kind::Path => (0, quote!(.path(&#value))),
            Kind::Params => (1, quote!(.params(&#value))),
            Kind::Json => (2, quote!(.json(&#value))),
            _ => (2, quote!(.body(#value))),
        });
    }
    steps.sort_by_key(|(order, _)| *order);
    let steps = steps.into_iter().map(|(_, s)| s);

    let state = match &args.state {
        Some(t) => t.to_token_stream(),
        None => sig
            .state
            .as_ref()
            .map_or_else(|| quote!(()), ToTokens::to_token_stream),
    };
    let count = sig.args.len();
    let arg_checks = sig.args.iter().enumerate().map(|(i, a)| {
        let ty = &a.ty;
        if i + 1 == count {
            quote_spanned!(ty.span()=> ::rrssh::__private::check::last::<#ty, #state, _>();)
        } else {
            quote_spanned!(ty.span()=> ::rrssh::__private::check::parts::<#ty, #state>();)
        }
    });
    let out_span = match &item.sig.output {
        syn::ReturnType::Type(_, t) => t.span(),
        syn::ReturnType::Default => item.sig.ident.span(),
    };
    let output_checks = if sig.opaque_output {
        quote!()
    } else {
        let stream_check = if method == "STREAM" {
            quote_spanned!(out_span=> ::rrssh::__private::check::stream::<#output>();)
        } else {
            quote!()
        };
        quote_spanned! {out_span=>
            ::rrssh::__private::check::response::<#output>();
            #stream_check
        }
    };
    let client_output =
        quote_spanned!(out_span=> <#response_ty as ::rrssh::client::FromResponse>::Output);
    let send_ty = quote_spanned!(out_span=> #response_ty);
    let call_doc = format!("Calls `{method} {path}` (the route of [`{name_str}`]) on any client.");
    let marker_doc = format!(
        "The route `{method} {path}` of [`{name_str}`](fn@{name_str}): its description and typed client call."
    );
    let check_fn = format_ident!("__rrssh_check_{}", name);
    let schema_fn = schema::schema_fn(sig);

    quote! {
        #[doc = #marker_doc]
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        #[automatically_derived]
        impl ::rrssh::routing::RouteDef for #name {
            const INFO: ::rrssh::routing::RouteInfo = ::rrssh::routing::RouteInfo {
                name: #name_str,
                method: #method,
                path: #path,
                summary: #summary,
                args: &[#(#arg_infos),*],
                output: #output_text,
                scope: #scope,
                schemas: ::rrssh::__private::schema::SchemaFn(#name::__rrssh_schemas),
            };
            type Response = #response_ty;
        }

        impl #name {
            #schema_fn

            #[doc = #call_doc]
            #[allow(clippy::too_many_arguments, dead_code)]
            #vis async fn call<__RrsshClient: ::rrssh::client::Call>(
                __rrssh_client: &__RrsshClient,
                #(#params),*
            ) -> ::core::result::Result<#client_output, ::rrssh::client::Error> {
                ::rrssh::__private::CallBuilder::new(#method, #path)
                    #(#steps)*
                    .send::<#send_ty, __RrsshClient>(__rrssh_client)
                    .await
            }
        }

        #[allow(dead_code, non_snake_case)]
        const _: () = {
            fn #check_fn() {
                #(#arg_checks)*
                #output_checks
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(method: Option<&str>, args: TokenStream, item: TokenStream) -> String {
        expand(method, args, item).to_string()
    }

    #[test]
    fn emits_fn_marker_info_and_call() {
        let out = expand_str(
            Some("GET"),
            quote!("/users/{id}"),
            quote! {
                /// Fetch one user.
                ///
                /// More text.
                pub async fn get_user(Path(id): Path<u64>, State(db): State<Db>) -> Json<User> { todo!() }
            },
        );
        assert!(out.contains("pub async fn get_user"), "{out}");
        assert!(out.contains("pub struct get_user { }"), "{out}");
        assert!(
            out.contains("summary : :: core :: option :: Option :: Some (\"Fetch one user.\")"),
            "{out}"
        );
        assert!(out.contains("id : u64"), "{out}");
        assert!(
            !out.contains("db :"),
            "state must not reach the client: {out}"
        );
        assert!(out.contains(". path (& id)"), "{out}");
        assert!(
            out.contains("check :: parts :: < Path < u64 > , Db >"),
            "{out}"
        );
        assert!(
            out.contains("check :: last :: < State < Db > , Db , _ >"),
            "{out}"
        );
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn call_arguments_follow_path_query_body_order() {
        let out = expand_str(
            Some("POST"),
            quote!("/a/{x}"),
            quote!(
                async fn f(Json(b): Json<B>) {}
            ),
        );
        assert!(
            out.contains("compile_error"),
            "a capture without Path must fail: {out}"
        );
        let out = expand_str(
            Some("POST"),
            quote!("/a/{x}"),
            quote!(
                async fn f(Params(q): Params<Q>, Path(x): Path<u8>, Json(b): Json<B>) {}
            ),
        );
        let pos = |s: &str| {
            out.find(s)
                .unwrap_or_else(|| panic!("{s} missing in {out}"))
        };
        assert!(pos("x : u8") < pos("q : Q") && pos("q : Q") < pos("b : B"));
        assert!(
            pos(". path (& x)") < pos(". params (& q)")
                && pos(". params (& q)") < pos(". json (& b)")
        );
    }

    #[test]
    fn errors_keep_the_fn_and_skip_the_rest() {
        let out = expand_str(
            Some("GET"),
            quote!("no-slash"),
            quote!(
                async fn f() {}
            ),
        );
        assert!(out.contains("async fn f"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("at index 0"), "{out}");
        assert!(!out.contains("RouteDef"), "{out}");
    }

    #[test]
    fn stream_routes_check_the_stream_response() {
        let out = expand_str(
            Some("STREAM"),
            quote!("/t"),
            quote!(
                async fn t() -> JsonStream<u8> {
                    todo!()
                }
            ),
        );
        assert!(
            out.contains("check :: stream :: < JsonStream < u8 > >"),
            "{out}"
        );
    }

    #[test]
    fn route_attribute_takes_a_method() {
        let out = expand_str(
            None,
            quote!(OPTIONS, "/x", scope = "admin"),
            quote!(
                async fn o() {}
            ),
        );
        assert!(out.contains("method : \"OPTIONS\""), "{out}");
        assert!(out.contains("Some (\"admin\")"), "{out}");
        let out = expand_str(
            None,
            quote!("/x"),
            quote!(
                async fn o() {}
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
    }

    #[test]
    fn opaque_returns_give_raw_responses() {
        let out = expand_str(
            Some("GET"),
            quote!("/x"),
            quote!(
                async fn o() -> impl IntoResponse {
                    ()
                }
            ),
        );
        assert!(
            out.contains("type Response = :: rrssh :: Response"),
            "{out}"
        );
    }
}
