//! What the route attributes record of a route's types for the OpenAPI document: the schema
//! of each input and of the output, taken from `schemars::JsonSchema` where the type has it
//! (and the `openapi` feature is on), left open otherwise. Used by generated code only.

use std::fmt;
use std::marker::PhantomData;

use serde_json::Value;

/// Gathers schemas and the definitions they refer to.
pub struct Collector {
    #[cfg(feature = "openapi")]
    pub(crate) generator: schemars::SchemaGenerator,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

impl Collector {
    #[cfg_attr(not(feature = "openapi"), allow(dead_code))]
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(feature = "openapi")]
            generator: schemars::generate::SchemaSettings::draft2020_12()
                .with(|s| {
                    s.definitions_path = "/components/schemas".into();
                    s.meta_schema = None;
                })
                .into_generator(),
        }
    }
}

/// A type whose schema is wanted.
pub struct Probe<T: ?Sized>(PhantomData<fn() -> Box<T>>);

impl<T: ?Sized> Probe<T> {
    /// A probe of `T`.
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: ?Sized> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ?Sized> fmt::Debug for Probe<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Probe")
    }
}

/// The schema of a type that has one (`(&Probe::<T>::new()).schema(c)` picks this when it
/// applies).
pub trait ViaSchema {
    /// The schema, or a `$ref` to it.
    fn schema(&self, c: &mut Collector) -> Option<Value>;
}

/// Any type: no schema known.
pub trait NoSchema {
    /// None.
    fn schema(&self, c: &mut Collector) -> Option<Value>;
}

#[cfg(feature = "openapi")]
impl<T: ?Sized + schemars::JsonSchema> ViaSchema for Probe<T> {
    fn schema(&self, c: &mut Collector) -> Option<Value> {
        Some(c.generator.subschema_for::<T>().to_value())
    }
}

impl<T: ?Sized> NoSchema for &Probe<T> {
    fn schema(&self, _: &mut Collector) -> Option<Value> {
        None
    }
}

/// A request body, as a route takes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum BodyShape {
    /// None.
    #[default]
    None,
    /// JSON, with its schema if known.
    Json(Option<Value>),
    /// Text (`String`).
    Text,
    /// Bytes.
    Bytes,
}

/// A response, as a route answers it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum OutputShape {
    /// Unknown (an `impl IntoResponse`, a type of its own).
    #[default]
    Unknown,
    /// No body.
    Empty,
    /// JSON, with its schema if known.
    Json(Option<Value>),
    /// NDJSON items, with the item schema if known.
    Stream(Option<Value>),
    /// Text.
    Text,
    /// Bytes.
    Bytes,
}

/// The schemas of one route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteSchemas {
    /// The `Path<T>` type's schema.
    pub path: Option<Value>,
    /// For `Path<(A, B, …)>`: each element's schema.
    pub path_items: Vec<Option<Value>>,
    /// The `Params<T>` type's schema.
    pub query: Option<Value>,
    /// The request body.
    pub body: BodyShape,
    /// The response.
    pub output: OutputShape,
    /// The handler picks its success status (`(StatusCode, R)`, `StatusCode`).
    pub any_status: bool,
}

/// How a route's schemas are made (a function the route attribute generates).
#[derive(Clone, Copy)]
pub struct SchemaFn(pub fn(&mut Collector) -> RouteSchemas);

impl SchemaFn {
    /// For routes without an attribute: nothing known.
    pub const NONE: SchemaFn = SchemaFn(|_| RouteSchemas {
        path: None,
        path_items: Vec::new(),
        query: None,
        body: BodyShape::None,
        output: OutputShape::Unknown,
        any_status: false,
    });
}

impl fmt::Debug for SchemaFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SchemaFn")
    }
}

impl PartialEq for SchemaFn {
    fn eq(&self, _: &Self) -> bool {
        // Descriptions are compared by what they say, not by how their schemas are made.
        true
    }
}

impl Eq for SchemaFn {}
