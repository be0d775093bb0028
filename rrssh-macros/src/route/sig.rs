//! Reading the handler's signature: which arguments reach the client, the state type, the
//! return type, and the mistakes to report.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

/// What an argument is, judged from its type's last path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Path,
    Params,
    Json,
    /// `Bytes` or `String`: a raw body.
    RawBody,
    /// Consumes the body but does not reach the client (`Body`, `Request`).
    ServerBody,
    State,
    /// Any other extractor: server-only.
    Other,
}

impl Kind {
    pub(crate) fn consumes_body(self) -> bool {
        matches!(self, Kind::Json | Kind::RawBody | Kind::ServerBody)
    }
}

/// One argument of the client call.
pub(crate) struct WireArg {
    pub(crate) name: Ident,
    pub(crate) ty: Type,
}

pub(crate) struct Arg {
    pub(crate) kind: Kind,
    pub(crate) ty: Type,
    /// The client arguments this handler argument becomes (none for server-only ones).
    pub(crate) wire: Vec<WireArg>,
}

pub(crate) struct Signature {
    pub(crate) args: Vec<Arg>,
    pub(crate) state: Option<Type>,
    /// The return type (`()` when omitted).
    pub(crate) output: Type,
    /// The return type mentions `impl Trait` and cannot be named.
    pub(crate) opaque_output: bool,
}

pub(crate) const MAX_ARGS: usize = 16;

pub(crate) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

pub(crate) fn first_generic(seg: &syn::PathSegment) -> Option<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

fn kind_of(ty: &Type) -> Kind {
    let Some(seg) = last_segment(ty) else {
        return Kind::Other;
    };
    match seg.ident.to_string().as_str() {
        "Path" if first_generic(seg).is_some() => Kind::Path,
        "Params" if first_generic(seg).is_some() => Kind::Params,
        "Json" if first_generic(seg).is_some() => Kind::Json,
        "State" if first_generic(seg).is_some() => Kind::State,
        "Bytes" | "String" | "ByteStream" => Kind::RawBody,
        "Body" | "Request" => Kind::ServerBody,
        _ => Kind::Other,
    }
}

/// The ident bound by `Wrapper(ident)` or by `ident` itself.
fn bound_ident(pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(p) if p.subpat.is_none() => Some(p.ident.clone()),
        Pat::TupleStruct(ts) if ts.elems.len() == 1 => bound_ident(&ts.elems[0]),
        Pat::Paren(p) => bound_ident(&p.pat),
        _ => None,
    }
}

fn inner_pat(pat: &Pat) -> Option<&Pat> {
    match pat {
        Pat::TupleStruct(ts) if ts.elems.len() == 1 => Some(&ts.elems[0]),
        _ => None,
    }
}

fn ident_or(pat: Option<Ident>, default: &str, span: Span) -> Ident {
    let Some(i) = pat else {
        return Ident::new(default, span);
    };
    let text = i.to_string();
    let trimmed = text.trim_start_matches('_');
    if trimmed.is_empty() {
        Ident::new(default, span)
    } else if trimmed.len() == text.len() {
        i
    } else {
        Ident::new(trimmed, i.span())
    }
}

fn mentions_impl(ty: &Type) -> bool {
    contains_impl_group(ty.to_token_stream())
}

fn contains_impl_group(ts: proc_macro2::TokenStream) -> bool {
    ts.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "impl",
        proc_macro2::TokenTree::Group(g) => contains_impl_group(g.stream()),
        _ => false,
    })
}

fn wire_args(kind: Kind, pat: &Pat, ty: &Type) -> Vec<WireArg> {
    let inner_ty = last_segment(ty).and_then(first_generic).cloned();
    let default = match kind {
        Kind::Path => "path",
        Kind::Params => "params",
        Kind::Json | Kind::RawBody => "body",
        _ => return Vec::new(),
    };
    if kind == Kind::RawBody {
        return vec![WireArg {
            name: ident_or(bound_ident(pat), default, pat.span()),
            ty: ty.clone(),
        }];
    }
    let Some(inner_ty) = inner_ty else {
        return Vec::new();
    };
    // `Path((a, b)): Path<(A, B)>` becomes two arguments, `a: A, b: B`.
    if kind == Kind::Path
        && let (Some(Pat::Tuple(pt)), Type::Tuple(tt)) = (inner_pat(pat), &inner_ty)
        && pt.elems.len() == tt.elems.len()
        && pt.elems.len() > 1
    {
        let names: Option<Vec<Ident>> = pt.elems.iter().map(bound_ident).collect();
        if let Some(names) = names {
            return names
                .into_iter()
                .zip(tt.elems.iter())
                .map(|(n, t)| WireArg {
                    name: ident_or(Some(n), default, pat.span()),
                    ty: t.clone(),
                })
                .collect();
        }
    }
    vec![WireArg {
        name: ident_or(bound_ident(pat), default, pat.span()),
        ty: inner_ty,
    }]
}

/// Reads the signature, collecting every mistake found.
pub(crate) fn analyze(item: &ItemFn, errors: &mut Vec<syn::Error>) -> Signature {
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span(),
            "route handlers must be `async fn`: add `async` before `fn`",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            "route handlers cannot be generic: the route attribute needs concrete types for the typed client",
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new(
            v.span(),
            "route handlers cannot be variadic",
        ));
    }
    let mut args = Vec::new();
    let mut state = None;
    let count = sig.inputs.len();
    for (i, input) in sig.inputs.iter().enumerate() {
        let pt = match input {
            FnArg::Receiver(r) => {
                errors.push(syn::Error::new(
                    r.span(),
                    "route handlers cannot take `self`: make it a free `async fn`",
                ));
                continue;
            }
            FnArg::Typed(pt) => pt,
        };
        if i == MAX_ARGS {
            errors.push(syn::Error::new(
                pt.span(),
                format!("route handlers take at most {MAX_ARGS} arguments, this one has {count}: group some into a struct"),
            ));
        }
        let ty = (*pt.ty).clone();
        let kind = kind_of(&ty);
        if kind.consumes_body() && i + 1 != count {
            let name = last_segment(&ty).map_or_else(|| "this".to_owned(), |s| s.ident.to_string());
            errors.push(syn::Error::new(
                pt.ty.span(),
                format!("`{name}` consumes the request body and thus must be the last argument"),
            ));
        }
        if kind == Kind::State && state.is_none() {
            state = last_segment(&ty).and_then(first_generic).cloned();
        }
        let wire = wire_args(kind, &pt.pat, &ty);
        args.push(Arg { kind, ty, wire });
    }
    for kind in [Kind::Path, Kind::Params] {
        let mut seen = sig.inputs.iter().zip(&args).filter(|(_, a)| a.kind == kind);
        if let (Some(_), Some((second, _))) = (seen.next(), seen.next()) {
            let what = if kind == Kind::Path { "Path" } else { "Params" };
            errors.push(syn::Error::new(
                second.span(),
                format!(
                    "only one `{what}` argument is allowed: extract a tuple or a struct instead"
                ),
            ));
        }
    }
    let (output, opaque_output) = match &sig.output {
        ReturnType::Default => (syn::parse_quote!(()), false),
        ReturnType::Type(_, ty) => ((**ty).clone(), mentions_impl(ty)),
    };
    Signature {
        args,
        state,
        output,
        opaque_output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(src: &str) -> (Signature, Vec<String>) {
        let item: ItemFn = syn::parse_str(src).unwrap();
        let mut errors = Vec::new();
        let s = analyze(&item, &mut errors);
        (s, errors.iter().map(ToString::to_string).collect())
    }

    fn wire(s: &Signature) -> Vec<String> {
        s.args
            .iter()
            .flat_map(|a| &a.wire)
            .map(|w| format!("{}: {}", w.name, w.ty.to_token_stream()))
            .collect()
    }

    #[test]
    fn wire_arguments_are_named_after_bindings() {
        let (s, e) = sig(
            "async fn f(Path(id): Path<u64>, State(db): State<Db>, Params(q): Params<Q>, Json(new): Json<User>) {}",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(wire(&s), ["id: u64", "q: Q", "new: User"]);
        assert_eq!(s.state.to_token_stream().to_string(), "Db");
    }

    #[test]
    fn tuple_paths_split_and_defaults_apply() {
        let (s, _) =
            sig("async fn f(Path((org, repo)): Path<(String, u32)>, peer: Peer, body: Bytes) {}");
        assert_eq!(wire(&s), ["org: String", "repo: u32", "body: Bytes"]);
        let (s, _) = sig("async fn f(Path(p): Path<P>, Json(_): Json<V>) {}");
        assert_eq!(wire(&s), ["p: P", "body: V"]);
        let (s, _) = sig("async fn f(Path(Ids { a, b }): Path<Ids>) {}");
        assert_eq!(wire(&s), ["path: Ids"]);
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(sig("fn f() {}").1[0].contains("must be `async fn`"));
        assert!(
            sig("async fn f(Json(a): Json<A>, p: Peer) {}").1[0]
                .contains("must be the last argument")
        );
        assert!(sig("async fn f<T>() {}").1[0].contains("cannot be generic"));
        assert!(
            sig("async fn f(Path(a): Path<u8>, Path(b): Path<u8>) {}").1[0]
                .contains("only one `Path`")
        );
        let many = (0..17)
            .map(|i| format!("a{i}: Peer"))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(sig(&format!("async fn f({many}) {{}}")).1[0].contains("at most 16 arguments"));
    }

    #[test]
    fn opaque_outputs_are_detected() {
        assert!(sig("async fn f() -> impl IntoResponse {}").0.opaque_output);
        assert!(
            sig("async fn f() -> Result<impl IntoResponse, E> {}")
                .0
                .opaque_output
        );
        assert!(!sig("async fn f() -> Json<u8> {}").0.opaque_output);
    }
}
