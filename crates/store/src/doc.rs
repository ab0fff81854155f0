//! OpenAPI schemas of closed sets, built from the lists the code matches against, so that the
//! document and the parser cannot drift apart (and so that schemathesis generates values the
//! API accepts).

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A string that is one of `values`.
pub fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// An ISO 4217 code with a minor unit (what [`tally_core::money::CurrencyCode::parse`] takes).
pub fn currencies() -> Object {
    let all = tally_core::money::CurrencyCode::all();
    one_of(all.iter().map(|c| c.as_str()))
}

/// An attribution model's code.
pub fn models() -> Object {
    one_of(tally_attribution::model::Model::ALL.map(|m| m.code()))
}

/// A key scope.
pub fn scopes() -> Object {
    one_of(crate::tenants::Scope::ALL.map(|s| s.as_str()))
}

/// A reconciliation item's status.
pub fn item_statuses() -> Object {
    one_of(tally_core::reconcile::Status::ALL.map(|s| s.code()))
}

/// `type` of an event: one of [`tally_core::event::EventType::ALL`].
pub fn event_types() -> Object {
    one_of(tally_core::event::EventType::ALL.iter().map(|t| t.as_str()))
}

/// `kind` of an event.
pub fn event_kinds() -> Object {
    use tally_core::event::EventKind;
    one_of([EventKind::Touch, EventKind::Conversion].map(EventKind::as_str))
}
