//! The query string of `GET /delivery/all`: the documented parameters and nothing else. An
//! unknown parameter, a repeated one that may not repeat, or a value out of range is a 400 that
//! names it; a silently ignored `?stauts=pending` would answer every delivery as if it filtered.

use std::collections::HashSet;

use serde::Serialize;
use utoipa::ToSchema;

use super::wire::Status;
use crate::error::{ApiError, Result};
use crate::store::deliveries::{self as store, Filter, Order};

/// The largest `limit`.
pub const MAX_LIMIT: u32 = 1000;
/// The longest `q`, in characters.
pub const MAX_TEXT: usize = 200;
/// `q`'s pattern: any text without NUL (which no stored value holds, and PostgreSQL's text type
/// cannot carry).
pub const TEXT_PATTERN: &str = "^[^\\u{0}]*$";

/// The parameters, as the OpenAPI document names them (parsed by [`ListQuery::parse`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a description of the query string; `ListQuery::parse` reads it
pub struct ListParams {
    /// Page size. With it the response has `Link` headers (`next`, `prev`) to the neighbouring
    /// pages; without it, every matching delivery from `offset` on.
    #[param(minimum = 1, maximum = 1000, value_type = Option<u32>)]
    limit: Option<u32>,
    /// How many matching deliveries to skip (default 0). Past the end the page is empty (`[]`,
    /// 200), and `prev` leads back to the last deliveries.
    #[param(minimum = 0, maximum = 4294967295_u64, value_type = Option<u64>)]
    offset: Option<u32>,
    /// Only deliveries with this status. Repeat it for several:
    /// `status=pending&status=in_transit` (any of them).
    #[param(style = Form, explode = true, value_type = Option<Vec<Status>>)]
    status: Option<Vec<Status>>,
    /// Only deliveries whose `reference`, `recipient` or `address` contains this text. Letters
    /// A–Z match either case; other characters match as sent (on both database engines).
    // No `example`: the API explorer fills it in for "Try it out", filtering the list.
    #[param(max_length = 200, pattern = "^[^\\u{0}]*$")]
    q: Option<String>,
    /// The order: `id` (the default, the order of creation), `created_at`, `updated_at`; a
    /// leading `-` reverses it (`-updated_at`: the most recently changed first). Ties go by id.
    #[param(value_type = Option<Sort>)]
    sort: Option<Sort>,
}

/// The orders `sort` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum Sort {
    #[serde(rename = "id")]
    Id,
    #[serde(rename = "-id")]
    IdDesc,
    #[serde(rename = "created_at")]
    CreatedAt,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "updated_at")]
    UpdatedAt,
    #[serde(rename = "-updated_at")]
    UpdatedAtDesc,
}

impl Sort {
    const ALL: [(&'static str, Self, Order); 6] = [
        ("id", Self::Id, Order::Id),
        ("-id", Self::IdDesc, Order::IdDesc),
        ("created_at", Self::CreatedAt, Order::CreatedAt),
        ("-created_at", Self::CreatedAtDesc, Order::CreatedAtDesc),
        ("updated_at", Self::UpdatedAt, Order::UpdatedAt),
        ("-updated_at", Self::UpdatedAtDesc, Order::UpdatedAtDesc),
    ];

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, s, _)| *s)
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s, _)| *s == self)
            .map_or("id", |(n, ..)| n)
    }

    fn order(self) -> Order {
        Self::ALL
            .iter()
            .find(|(_, s, _)| *s == self)
            .map_or(Order::Id, |(.., o)| *o)
    }
}

/// `GET /delivery/all`'s query string, checked.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub statuses: Vec<store::Status>,
    pub text: Option<String>,
    pub sort: Option<Sort>,
}

fn bad(detail: String) -> ApiError {
    ApiError::BadRequest(detail)
}

impl ListQuery {
    /// Reads `query` (`application/x-www-form-urlencoded`, as browsers and `URLSearchParams`
    /// write it); every refusal names the parameter.
    pub fn parse(query: &str) -> Result<Self> {
        let mut parsed = Self::default();
        let mut seen = HashSet::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if name != "status" && !seen.insert(name.clone()) {
                return Err(bad(format!(
                    "query parameter `{name}` is given more than once"
                )));
            }
            match &*name {
                "limit" => {
                    let limit = number(&name, &value)?;
                    if !(1..=MAX_LIMIT).contains(&limit) {
                        return Err(bad(format!(
                            "query parameter `limit` must be between 1 and {MAX_LIMIT}"
                        )));
                    }
                    parsed.limit = Some(limit);
                }
                "offset" => parsed.offset = Some(number(&name, &value)?),
                "status" => parsed
                    .statuses
                    .push(store::Status::from_name(&value).ok_or_else(|| {
                        bad(format!(
                            "query parameter `status`: {value:?} is not one of pending, \
                             in_transit, delivered, cancelled (repeat the parameter for several)"
                        ))
                    })?),
                "q" => {
                    if value.chars().count() > MAX_TEXT || value.contains('\0') {
                        return Err(bad(format!(
                            "query parameter `q` must be at most {MAX_TEXT} characters, \
                             without NUL"
                        )));
                    }
                    parsed.text = Some(value.into_owned());
                }
                "sort" => {
                    parsed.sort = Some(Sort::from_name(&value).ok_or_else(|| {
                        bad(format!(
                            "query parameter `sort`: {value:?} is not one of id, -id, \
                             created_at, -created_at, updated_at, -updated_at"
                        ))
                    })?)
                }
                other => {
                    return Err(bad(format!(
                        "unknown query parameter `{other}`: GET /delivery/all takes limit, \
                         offset, status, q and sort"
                    )));
                }
            }
        }
        Ok(parsed)
    }

    /// No parameter at all: the whole list, as the article's client asks for it (cached).
    pub fn is_whole_list(&self) -> bool {
        self.limit.is_none()
            && self.offset.is_none()
            && self.statuses.is_empty()
            && self.text.is_none()
            && self.sort.is_none()
    }

    /// True when some deliveries may be left out (a filter), so the total must be counted.
    pub fn filters(&self) -> bool {
        !self.statuses.is_empty() || self.text.is_some()
    }

    pub fn filter(&self) -> Filter<'_> {
        Filter {
            statuses: &self.statuses,
            text: self.text.as_deref(),
            order: self.sort.map_or(Order::Id, Sort::order),
        }
    }

    /// This query's URI at another `offset` (for the `Link` header), every other parameter kept.
    pub fn at_offset(&self, limit: u32, offset: u32) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &limit.to_string());
        query.append_pair("offset", &offset.to_string());
        for status in &self.statuses {
            query.append_pair("status", status.as_str());
        }
        if let Some(text) = &self.text {
            query.append_pair("q", text);
        }
        if let Some(sort) = self.sort {
            query.append_pair("sort", sort.name());
        }
        format!("/delivery/all?{}", query.finish())
    }
}

fn number(name: &str, value: &str) -> Result<u32> {
    // Digits only: `u32::from_str` would also take `+5`, which the schema's integer is not.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "query parameter `{name}` must be a whole number, got {value:?}"
        )));
    }
    value.parse().map_err(|_| {
        bad(format!(
            "query parameter `{name}` must be at most {}",
            u32::MAX
        ))
    })
}

/// The `Link` header of a page (RFC 8288): `next` while deliveries follow this page, `prev`
/// while some precede it. Neither points past the ends: from beyond the end, `prev` is the last
/// `limit` deliveries.
pub fn page_links(query: &ListQuery, limit: u32, total: usize) -> Option<String> {
    let offset = query.offset.unwrap_or(0);
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    let mut links = Vec::new();
    if offset.saturating_add(limit) < total {
        let next = query.at_offset(limit, offset + limit);
        links.push(format!("<{next}>; rel=\"next\""));
    }
    if offset > 0 && total > 0 {
        let prev = query.at_offset(limit, offset.min(total).saturating_sub(limit));
        links.push(format!("<{prev}>; rel=\"prev\""));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_never_point_past_the_ends() {
        let at = |offset| ListQuery {
            limit: Some(2),
            offset: Some(offset),
            ..Default::default()
        };
        let links = |offset, total| page_links(&at(offset), 2, total);
        assert_eq!(
            links(0, 12).as_deref(),
            Some("</delivery/all?limit=2&offset=2>; rel=\"next\"")
        );
        assert_eq!(
            links(10, 12).as_deref(),
            Some("</delivery/all?limit=2&offset=8>; rel=\"prev\""),
            "the last page has no next"
        );
        assert_eq!(
            links(100, 12).as_deref(),
            Some("</delivery/all?limit=2&offset=10>; rel=\"prev\""),
            "past the end, prev is the last page, not offset 98"
        );
        assert_eq!(links(0, 2), None, "one page");
        assert_eq!(links(5, 0), None, "nothing to lead to");
    }

    #[test]
    fn every_refusal_names_its_parameter() {
        for (query, name) in [
            ("status2=pending", "status2"),
            ("limit=2&limit=3", "limit"),
            ("limit=0", "limit"),
            ("limit=+5", "limit"),
            ("offset=-1", "offset"),
            ("status=pending,delivered", "status"),
            ("sort=name", "sort"),
            ("q=a%00b", "q"),
            ("=x", "``"),
        ] {
            let err = ListQuery::parse(query).expect_err(query).to_string();
            assert!(
                err.contains(&format!("`{}`", name.trim_matches('`'))),
                "{query}: {err}"
            );
        }
    }
}
