//! `#[rrssh::api]` on a trait: the trait (with `Send` futures and a provided `into_router`),
//! the route markers of its methods, and a typed client, `TraitClient<C>`.
//!
//! Each method is read as a route handler without its `&self`: the same attribute arguments,
//! the same extractor and response checks (spanned on the trait's own types), the same typed
//! call. The trait is emitted even after errors, with the errors next to it.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ItemTrait, ReturnType, TraitItem, TraitItemFn};

use crate::route;

/// The route attributes a method may carry, with their method.
const ROUTE_ATTRS: [(&str, Option<&str>); 7] = [
    ("get", Some("GET")),
    ("post", Some("POST")),
    ("put", Some("PUT")),
    ("patch", Some("PATCH")),
    ("delete", Some("DELETE")),
    ("stream", Some("STREAM")),
    ("route", None),
];

/// One route method of the trait.
struct Method {
    ident: syn::Ident,
    docs: Vec<syn::Attribute>,
    /// The handler arguments (after `&self`), as written.
    inputs: Vec<syn::PatType>,
    /// What `route_items` generated.
    generated: route::Generated,
    /// The handler's return type (`()` when omitted).
    output: syn::Type,
    opaque: bool,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let out = expand_inner(args, item);
    if std::env::var_os("RRSSH_MACROS_DEBUG").is_some() {
        eprintln!("{out}");
    }
    out
}

fn expand_inner(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut tr: ItemTrait = match syn::parse2(item.clone()) {
        Ok(t) => t,
        Err(e) => {
            let e = syn::Error::new(e.span(), "`#[rrssh::api]` goes on a trait");
            let mut out = item;
            out.extend(e.into_compile_error());
            return out;
        }
    };
    let mut errors = Vec::new();
    if !args.is_empty() {
        errors.push(syn::Error::new(
            args.span(),
            "`#[rrssh::api]` takes no arguments",
        ));
    }
    if !tr.generics.params.is_empty() {
        errors.push(syn::Error::new(
            tr.generics.span(),
            "api traits cannot be generic: the typed client needs concrete types",
        ));
    }
    let mut methods = Vec::new();
    let marker_vis = marker_vis(&tr.vis);
    for item in &mut tr.items {
        match item {
            TraitItem::Fn(f) => {
                if let Some(m) = method(f, &marker_vis, &mut errors) {
                    methods.push(m);
                }
                rewrite(f);
            }
            other => errors.push(syn::Error::new(
                other.span(),
                "api traits hold only route methods (`#[get(\"/path\")] async fn name(&self, …)`)",
            )),
        }
    }
    let generated = if errors.is_empty() {
        generate(&mut tr, &methods)
    } else {
        TokenStream::new()
    };
    let errors = errors
        .into_iter()
        .reduce(|mut a, b| {
            a.combine(b);
            a
        })
        .map(syn::Error::into_compile_error);
    quote!(#tr #generated #errors)
}

/// Reads one method: its route attribute (removed from it), its receiver and its handler
/// signature.
fn method(
    f: &mut TraitItemFn,
    marker_vis: &syn::Visibility,
    errors: &mut Vec<syn::Error>,
) -> Option<Method> {
    let pos = f.attrs.iter().position(|a| route_attr(a).is_some());
    let Some(pos) = pos else {
        errors.push(syn::Error::new(
            f.sig.ident.span(),
            format!(
                "`{}` has no route attribute: every method of an api trait is a route, such as `#[get(\"/items/{{id}}\")]`",
                f.sig.ident
            ),
        ));
        return None;
    };
    let attr = f.attrs.remove(pos);
    let method = route_attr(&attr).and_then(|(_, m)| *m);
    let args = match &attr.meta {
        syn::Meta::List(l) => l.tokens.clone(),
        other => {
            errors.push(syn::Error::new(
                other.span(),
                "expected the route path: `#[get(\"/items/{id}\")]`",
            ));
            return None;
        }
    };
    if let Some(body) = &f.default {
        errors.push(syn::Error::new(
            body.span(),
            "api methods have no body here: implement them in an `impl` of the trait",
        ));
    }
    let mut inputs = f.sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        other => {
            let span = other.map_or_else(|| f.sig.ident.span(), Spanned::span);
            errors.push(syn::Error::new(
                span,
                "api methods take `&self` first (the server's value serves every call)",
            ));
            return None;
        }
    }
    let inputs: Vec<syn::PatType> = inputs
        .filter_map(|i| match i {
            FnArg::Typed(pt) => Some(pt.clone()),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let docs: Vec<syn::Attribute> = f
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    // The method as a free handler, for the route machinery.
    let mut sig = f.sig.clone();
    sig.inputs = inputs.iter().cloned().map(FnArg::Typed).collect();
    let handler = ItemFn {
        attrs: docs.clone(),
        vis: marker_vis.clone(),
        sig,
        block: Box::new(syn::parse_quote!({})),
    };
    let generated = route::route_items(method, args, &handler, errors)?;
    let (output, opaque) = match &f.sig.output {
        ReturnType::Default => (syn::parse_quote!(()), false),
        ReturnType::Type(_, t) => ((**t).clone(), generated.sig.opaque_output),
    };
    Some(Method {
        ident: f.sig.ident.clone(),
        docs,
        inputs,
        generated,
        output,
        opaque,
    })
}

/// The visibility of the markers, inside the hidden module: as far as the trait reaches (and
/// at least its own module).
fn marker_vis(trait_vis: &syn::Visibility) -> syn::Visibility {
    match trait_vis {
        syn::Visibility::Public(_) => syn::parse_quote!(pub),
        syn::Visibility::Inherited => syn::parse_quote!(pub(super)),
        syn::Visibility::Restricted(r) if r.path.is_ident("crate") => syn::parse_quote!(pub(crate)),
        syn::Visibility::Restricted(_) => syn::parse_quote!(pub(crate)),
    }
}

/// The route attribute `a` is (`#[get]` or `#[rrssh::get]`): its name and method (none for
/// `#[route]`, which names it).
fn route_attr(a: &syn::Attribute) -> Option<&'static (&'static str, Option<&'static str>)> {
    let path = a.path();
    let last = path.segments.last()?;
    let qualified_elsewhere =
        path.segments.len() > 1 && !(path.segments.len() == 2 && path.segments[0].ident == "rrssh");
    if qualified_elsewhere {
        return None;
    }
    ROUTE_ATTRS.iter().find(|(name, _)| last.ident == name)
}

/// `async fn m(&self, …) -> R;` becomes `fn m(&self, …) -> impl Future<Output = R> + Send;`,
/// so every implementation's future is `Send` (a server runs it on any thread).
fn rewrite(f: &mut TraitItemFn) {
    if f.default.is_some() || f.sig.asyncness.take().is_none() {
        return;
    }
    let output = match &f.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => quote!(#t),
    };
    let span = f.sig.output.span();
    f.sig.output = syn::parse_quote_spanned! {span=>
        -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
    };
}

fn generate(tr: &mut ItemTrait, methods: &[Method]) -> TokenStream {
    let vis = &tr.vis;
    let name = &tr.ident;
    let module = format_ident!("__rrssh_api_{}", name);
    let client = format_ident!("{}Client", name);
    let markers = methods.iter().map(|m| &m.generated.items);

    // `into_router`: every method, served by a clone of `self`.
    let handlers = methods.iter().map(|m| {
        let ident = &m.ident;
        let args: Vec<syn::Ident> = (0..m.inputs.len())
            .map(|i| format_ident!("__rrssh_arg{}", i))
            .collect();
        let tys = m.inputs.iter().map(|pt| &pt.ty);
        quote! {
            .handler::<#module::#ident, _, _>({
                let __rrssh_this = ::core::clone::Clone::clone(&self);
                move |#(#args: #tys),*| {
                    let __rrssh_this = ::core::clone::Clone::clone(&__rrssh_this);
                    async move { <Self as #name>::#ident(&__rrssh_this, #(#args),*).await }
                }
            })
        }
    });
    let router_doc = format!(
        "Serves every route of [`{name}`] with this value (cloned for each call): merge the result \
         into a router, `Router::new().merge(value.into_router())`."
    );
    let into_router: TraitItem = syn::parse_quote! {
        #[doc = #router_doc]
        fn into_router(self) -> ::rrssh::Router
        where
            Self: ::core::marker::Sized
                + ::core::clone::Clone
                + ::core::marker::Send
                + ::core::marker::Sync
                + 'static,
        {
            ::rrssh::Router::new().mount(::rrssh::routing::Routes::new() #(#handlers)*)
        }
    };
    tr.items.push(into_router);

    // The client: one method per route.
    let calls = methods.iter().map(|m| {
        let vis = &tr.vis;
        let ident = &m.ident;
        let docs = &m.docs;
        let params: Vec<_> = route::wire_params(&m.generated.sig);
        let route_doc = format!("Calls `{} {}`.", m.generated.method, m.generated.path);
        let spacer = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
        let names = params.iter().map(|w| &w.name);
        let decls = params.iter().map(|w| {
            let (n, t) = (&w.name, &w.ty);
            quote!(#n: #t)
        });
        let response = if m.opaque {
            quote!(::rrssh::Response)
        } else {
            let o = &m.output;
            quote!(#o)
        };
        let span = m.output.span();
        let ret = quote_spanned!(span=> <#response as ::rrssh::client::FromResponse>::Output);
        quote! {
            #(#docs)*
            #spacer
            #[doc = #route_doc]
            #[allow(clippy::too_many_arguments)]
            #vis async fn #ident(&self, #(#decls),*)
                -> ::core::result::Result<#ret, ::rrssh::client::Error>
            {
                #module::#ident::call(&self.client, #(#names),*).await
            }
        }
    });
    let client_doc = format!(
        "A typed client of [`{name}`] over any [`Call`](::rrssh::client::Call): an rrssh \
         client, a hub's peer, a test client, a layered service."
    );
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case, non_camel_case_types, unreachable_pub, clippy::all)]
        mod #module {
            #[allow(unused_imports)]
            use super::*;
            #(#markers)*
        }

        #[doc = #client_doc]
        #[derive(Debug, Clone)]
        #vis struct #client<C> {
            client: C,
        }

        impl<C: ::rrssh::client::Call> #client<C> {
            /// A client calling through `client`.
            #vis fn new(client: C) -> Self {
                Self { client }
            }

            /// The client it calls through.
            #vis fn inner(&self) -> &C {
                &self.client
            }

            #(#calls)*
        }
    }
}

#[cfg(test)]
mod tests;
