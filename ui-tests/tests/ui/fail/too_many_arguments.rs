use rrssh::HeaderMap as H;

#[rrssh::get("/many")]
async fn many(
    _a: H, _b: H, _c: H, _d: H, _e: H, _f: H, _g: H, _h: H, _i: H,
    _j: H, _k: H, _l: H, _m: H, _n: H, _o: H, _p: H, _q: H,
) {
}

fn main() {}
