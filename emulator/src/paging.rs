//! Collections as the service pages them: `limit` (alias `page_size`)
//! default 50, at most 200; `linked_partitioning=true` answers
//! `{collection, next_href}` with an opaque cursor in an absolute
//! `next_href`. Visibility filters run after the window is cut, so pages
//! can come back short or empty while `next_href` remains.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error::{ApiError, json_response};
use crate::render::AccessFilter;
use crate::world::Access;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

/// Parameters that position a page; everything else is a filter that
/// `next_href` carries forward.
const PAGING_PARAMS: &[&str] = &[
    "limit",
    "page_size",
    "cursor",
    "offset",
    "linked_partitioning",
];

/// A pagination defect injected by a fault rule (`"next_href": ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageFault {
    /// `next_href` names another host (this base URL instead of ours).
    ForeignHost(String),
    /// `next_href` is the URL of the page just served.
    Repeat,
    /// `next_href` leaves out the caller's filters (`access`, ...).
    DropParams,
}

/// A request's query string, decoded, in order.
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        Params(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Decodes an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Params {
        Params(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`1`, `false`/`0`); 400 on anything else.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, not `{other}`"
            ))),
        }
    }
}

/// Where a page starts, how long it is, and in which shape it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: usize,
    pub limit: usize,
    pub linked: bool,
}

impl PageRequest {
    pub fn parse(params: &Params) -> Result<PageRequest, ApiError> {
        let limit = match params.get("limit").or_else(|| params.get("page_size")) {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => {
                let n: usize = text.parse().map_err(|_| {
                    ApiError::bad_request(format!("limit must be a whole number, not `{text}`"))
                })?;
                n.clamp(1, MAX_LIMIT)
            }
        };
        let offset = match (params.get("cursor"), params.get("offset")) {
            (Some(cursor), _) => {
                decode_cursor(cursor).ok_or_else(|| ApiError::bad_request("cursor is not valid"))?
            }
            (None, Some(text)) if !text.is_empty() => text.parse().map_err(|_| {
                ApiError::bad_request(format!("offset must be a whole number, not `{text}`"))
            })?,
            _ => 0,
        };
        Ok(PageRequest {
            offset,
            limit,
            linked: params.flag("linked_partitioning", false)?,
        })
    }

    /// The window of a collection of `total` items.
    pub fn window(&self, total: usize) -> std::ops::Range<usize> {
        let start = self.offset.min(total);
        let end = self.offset.saturating_add(self.limit).min(total);
        start..end
    }

    pub fn has_more(&self, total: usize) -> bool {
        self.offset.saturating_add(self.limit) < total
    }
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("sc-emulator:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("sc-emulator:")?.parse().ok()
}

/// The `access` filter, with the endpoint's own default when absent.
pub fn access_filter(params: &Params, default: AccessFilter) -> Result<AccessFilter, ApiError> {
    let Some(text) = params.get("access").filter(|t| !t.is_empty()) else {
        return Ok(default);
    };
    let mut set = std::collections::HashSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let access = Access::parse(part).ok_or_else(|| {
            ApiError::bad_request(format!(
                "access `{part}` is not one of playable, preview, blocked"
            ))
        })?;
        set.insert(access);
    }
    Ok(AccessFilter(set))
}

/// What a listing needs to build its `next_href`.
pub struct Listing<'a> {
    pub base: &'a str,
    /// The request path as received (still percent-encoded).
    pub path: &'a str,
    pub raw_query: Option<&'a str>,
    pub params: &'a Params,
    pub fault: Option<&'a PageFault>,
}

impl Listing<'_> {
    fn next_href(&self, page: &PageRequest, total: usize) -> Option<String> {
        if let Some(PageFault::Repeat) = self.fault {
            return Some(match self.raw_query {
                Some(q) if !q.is_empty() => format!("{}{}?{q}", self.base, self.path),
                _ => format!("{}{}", self.base, self.path),
            });
        }
        if !page.has_more(total) {
            return None;
        }
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if self.fault != Some(&PageFault::DropParams) {
            for (k, v) in &self.params.0 {
                if !PAGING_PARAMS.contains(&k.as_str()) {
                    query.append_pair(k, v);
                }
            }
        }
        query.append_pair("page_size", &page.limit.to_string());
        query.append_pair("cursor", &encode_cursor(page.offset + page.limit));
        query.append_pair("linked_partitioning", "true");
        let base = match self.fault {
            Some(PageFault::ForeignHost(host)) => host.as_str(),
            _ => self.base,
        };
        Some(format!("{base}{}?{}", self.path, query.finish()))
    }

    /// Answers one page: `{collection, next_href}` with linked
    /// partitioning, else the deprecated bare array.
    pub fn respond<T: Serialize>(
        &self,
        page: &PageRequest,
        collection: Vec<T>,
        total: usize,
    ) -> Response {
        if !page.linked {
            return json_response(StatusCode::OK, &collection);
        }
        #[derive(Serialize)]
        struct Linked<T> {
            collection: Vec<T>,
            next_href: Option<String>,
        }
        let next_href = self.next_href(page, total);
        json_response(
            StatusCode::OK,
            &Linked {
                collection,
                next_href,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_caps() {
        let p = PageRequest::parse(&Params::parse(None)).expect("no params is fine");
        assert_eq!((p.offset, p.limit, p.linked), (0, 50, false));
        let p = PageRequest::parse(&Params::parse(Some("limit=1000&linked_partitioning=true")))
            .expect("large limit is capped");
        assert_eq!((p.limit, p.linked), (200, true));
        let p = PageRequest::parse(&Params::parse(Some("page_size=7"))).expect("alias");
        assert_eq!(p.limit, 7);
        assert!(PageRequest::parse(&Params::parse(Some("limit=ten"))).is_err());
        assert!(PageRequest::parse(&Params::parse(Some("cursor=nonsense"))).is_err());
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(400)), Some(400));
    }

    #[test]
    fn windows_stop_at_the_end() {
        let p = PageRequest {
            offset: 400,
            limit: 200,
            linked: true,
        };
        assert_eq!(p.window(450), 400..450);
        assert!(!p.has_more(450));
        assert_eq!(p.window(10), 10..10);
    }
}
