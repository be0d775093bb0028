use quote::quote;

use super::expand;

fn out(item: proc_macro2::TokenStream) -> String {
    expand(quote!(), item).to_string()
}

#[test]
fn emits_the_trait_markers_router_and_client() {
    let o = out(quote! {
        pub trait Inventory {
            /// One item.
            #[get("/items/{id}")]
            async fn get_item(&self, id: Path<u64>) -> Json<Item>;
            #[post("/items")]
            async fn create(&self, peer: Peer, body: Json<NewItem>) -> (StatusCode, Json<Item>);
        }
    });
    assert!(!o.contains("compile_error"), "{o}");
    // The trait, without its route attributes, with Send futures and into_router.
    assert!(o.contains("pub trait Inventory"), "{o}");
    assert!(!o.contains("# [get"), "{o}");
    assert!(
        o.contains("fn get_item (& self , id : Path < u64 >) -> impl :: core :: future :: Future < Output = Json < Item > > + :: core :: marker :: Send ;"),
        "{o}"
    );
    assert!(
        o.contains("fn into_router (self) -> :: rrssh :: Router"),
        "{o}"
    );
    // Markers in a hidden module.
    assert!(o.contains("mod __rrssh_api_Inventory"), "{o}");
    assert!(o.contains("pub struct get_item { }"), "{o}");
    // The client: wire arguments only (no Peer), docs carried over.
    assert!(o.contains("pub struct InventoryClient < C >"), "{o}");
    assert!(
        o.contains("pub async fn get_item (& self , id : u64)"),
        "{o}"
    );
    assert!(
        o.contains("pub async fn create (& self , body : NewItem)"),
        "{o}"
    );
    assert!(o.contains("\" One item.\""), "{o}");
    assert!(o.contains("\"Calls `POST /items`.\""), "{o}");
}

#[test]
fn mistakes_are_reported_and_the_trait_kept() {
    let o = out(quote! {
        trait T {
            async fn no_route(&self);
            #[get("/x")]
            async fn no_self();
            #[get("bad")]
            async fn bad_path(&self);
            type Assoc;
        }
    });
    assert!(o.contains("trait T"), "{o}");
    assert!(o.contains("has no route attribute"), "{o}");
    assert!(o.contains("take `&self` first"), "{o}");
    assert!(o.contains("at index 0"), "{o}");
    assert!(o.contains("hold only route methods"), "{o}");
    assert!(!o.contains("TClient"), "{o}");
    let o = expand(
        quote!(extra),
        quote!(
            trait T {}
        ),
    )
    .to_string();
    assert!(o.contains("takes no arguments"), "{o}");
    let o = out(quote!(
        trait T<X> {}
    ));
    assert!(o.contains("cannot be generic"), "{o}");
    let o = out(quote!(
        fn not_a_trait() {}
    ));
    assert!(o.contains("goes on a trait"), "{o}");
}

#[test]
fn qualified_route_attributes_count() {
    let o = out(quote! {
        trait T {
            #[rrssh::stream("/ticks")]
            async fn ticks(&self) -> JsonStream<u8>;
            #[route(OPTIONS, "/o")]
            async fn opts(&self);
        }
    });
    assert!(!o.contains("compile_error"), "{o}");
    assert!(o.contains("method : \"STREAM\""), "{o}");
    assert!(o.contains("method : \"OPTIONS\""), "{o}");
}
