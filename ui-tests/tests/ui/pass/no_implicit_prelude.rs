#![no_implicit_prelude]

extern crate rrssh;
extern crate std;

#[rrssh::get("/hygiene/{id}")]
async fn hygiene(rrssh::Path(id): rrssh::Path<u64>) -> rrssh::Json<u64> {
    rrssh::Json(id)
}

fn main() {
    let _routes: rrssh::routing::Routes = rrssh::routes![hygiene];
}
