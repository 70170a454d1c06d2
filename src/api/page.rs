//! Reading a whole collection through `next_href` pagination.
//!
//! Rules (from the service's known paging defects): always ask for
//! `linked_partitioning=true&limit=200` plus the caller's filters; follow
//! `next_href` only on the configured API origin (the token never goes
//! elsewhere) and put back any of our parameters it dropped; keep going
//! through short or empty pages while `next_href` exists; a `next_href`
//! already seen is a paging loop; stop at a page-count guard; de-duplicate
//! by URN. Any failure fails the whole listing: partial data is never
//! returned, so nothing is ever planned (or deleted) from it.

use std::collections::HashSet;

use serde_json::Value;
use url::Url;

use super::models::WirePage;
use super::{
    ApiError, ApiReader, Call, CallAuth, CallBody, CallKind, Incomplete, PAGE_SIZE, Transport,
};
use crate::model::Urn;

/// Reads every item of the collection at `segments`, in the order served.
pub(crate) async fn read_all<T>(
    reader: &ApiReader,
    segments: &[&str],
    filters: &[(&str, &str)],
    parse: impl Fn(&Value) -> Result<T, String>,
    urn_of: impl Fn(&T) -> Urn,
) -> Result<Vec<T>, ApiError> {
    let transport = &reader.transport;
    let page_size = PAGE_SIZE.to_string();
    let mut params: Vec<(&str, &str)> =
        vec![("linked_partitioning", "true"), ("limit", &page_size)];
    params.extend_from_slice(filters);

    let mut url = transport.api_url(segments, &params);
    let listing = url.path().to_owned();
    let mut seen_pages = HashSet::from([page_key(&url)]);
    let mut seen_items = HashSet::new();
    let mut items = Vec::new();
    let mut pages = 0usize;
    loop {
        pages += 1;
        if pages > transport.config.max_pages {
            return Err(incomplete(
                &listing,
                Incomplete::TooManyPages {
                    max: transport.config.max_pages,
                },
            ));
        }
        let call = Call {
            method: reqwest::Method::GET,
            url,
            kind: CallKind::Read,
            auth: CallAuth::Session,
            body: CallBody::Empty,
            accept_redirect: false,
            timeout: Some(transport.config.request_timeout),
        };
        let reply = match transport.execute(&call, Some(&reader.session)).await {
            Ok(reply) => reply,
            // Say that the listing broke part-way, not just that a GET failed.
            Err(source) if pages > 1 => {
                return Err(ApiError::ListingFailed {
                    path: listing,
                    page: pages,
                    read: items.len(),
                    source: Box::new(source),
                });
            }
            Err(e) => return Err(e),
        };
        let page =
            WirePage::parse(&reply.body).map_err(|detail| page_error(&call, pages, detail))?;
        let served = page.items.len();
        for item in &page.items {
            if item.is_null() {
                continue;
            }
            let parsed = parse(item).map_err(|detail| page_error(&call, pages, detail))?;
            if seen_items.insert(urn_of(&parsed)) {
                items.push(parsed);
            }
        }
        tracing::debug!(
            listing,
            page = pages,
            served,
            total = items.len(),
            "page read"
        );
        let Some(href) = page.next_href else {
            return Ok(items);
        };
        url = next_page_url(transport, &listing, &href, &params)?;
        if !seen_pages.insert(page_key(&url)) {
            return Err(incomplete(&listing, Incomplete::RepeatedNextHref));
        }
    }
}

/// Checks a `next_href` and restores our parameters on it.
pub(crate) fn next_page_url(
    transport: &Transport,
    listing: &str,
    href: &str,
    params: &[(&str, &str)],
) -> Result<Url, ApiError> {
    let mut url = Url::parse(href)
        .or_else(|_| transport.config.api_url.join(href))
        .map_err(|_| {
            incomplete(
                listing,
                Incomplete::BadNextHref {
                    href: href.chars().take(200).collect(),
                },
            )
        })?;
    if !transport.is_api_origin(&url) {
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            (None, _) => url.scheme().to_owned(),
        };
        return Err(incomplete(listing, Incomplete::ForeignHost { host }));
    }
    restore_params(&mut url, params);
    Ok(url)
}

/// Appends each of `params` the URL lacks (`page_size` counts as `limit`).
fn restore_params(url: &mut Url, params: &[(&str, &str)]) {
    let present: HashSet<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let missing: Vec<(&str, &str)> = params
        .iter()
        .filter(|(key, _)| {
            let has = present.contains(*key) || (*key == "limit" && present.contains("page_size"));
            !has
        })
        .copied()
        .collect();
    if !missing.is_empty() {
        url.query_pairs_mut().extend_pairs(missing);
    }
}

/// Identity of a page URL for loop detection: origin, path and the sorted
/// query pairs (so a reordered copy of a URL is still the same page).
fn page_key(url: &Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    format!(
        "{}://{}:{}{}?{:?}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0),
        url.path(),
        pairs
    )
}

fn incomplete(listing: &str, reason: Incomplete) -> ApiError {
    ApiError::Incomplete {
        path: listing.to_owned(),
        reason,
    }
}

fn page_error(call: &Call, page: usize, detail: String) -> ApiError {
    ApiError::Decode {
        method: call.method.clone(),
        path: call.path().to_owned(),
        detail: format!("page {page}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ALL_ACCESS, ApiConfig, parse_base_url};

    fn transport(base: &str) -> Transport {
        let mut config = ApiConfig::new("id", None);
        config.api_url = parse_base_url(base).unwrap();
        Transport::new(config).unwrap()
    }

    const PARAMS: &[(&str, &str)] = &[
        ("linked_partitioning", "true"),
        ("limit", "200"),
        ("access", ALL_ACCESS),
    ];

    #[test]
    fn next_href_on_the_api_origin_is_followed() {
        let t = transport("https://api.soundcloud.com");
        let href = "https://api.soundcloud.com/me/likes/tracks?cursor=abc&linked_partitioning=true&limit=200&access=playable,preview,blocked";
        let url = next_page_url(&t, "/me/likes/tracks", href, PARAMS).unwrap();
        assert_eq!(url.as_str(), href);
    }

    #[test]
    fn next_href_on_another_host_port_or_scheme_is_refused_and_named() {
        let t = transport("http://127.0.0.1:8080");
        for (href, host) in [
            (
                "http://http.api.prod.api-public.srv.db.s-cloud.net/me/tracks?cursor=1",
                "http://http.api.prod.api-public.srv.db.s-cloud.net",
            ),
            (
                "http://127.0.0.1:8081/me/tracks?cursor=1",
                "http://127.0.0.1:8081",
            ),
            ("http://localhost:8080/me/tracks", "http://localhost:8080"),
        ] {
            let err = next_page_url(&t, "/me/tracks", href, PARAMS).unwrap_err();
            match &err {
                ApiError::Incomplete {
                    reason: Incomplete::ForeignHost { host: named },
                    ..
                } => assert_eq!(named, host),
                other => panic!("{other:?}"),
            }
            assert!(err.to_string().contains(host), "{err}");
        }
        let t = transport("https://api.soundcloud.com");
        assert!(next_page_url(&t, "/x", "http://api.soundcloud.com/x", PARAMS).is_err());
        assert!(next_page_url(&t, "/x", "https://api.soundcloud.com:444/x", PARAMS).is_err());
        assert!(next_page_url(&t, "/x", "https://api.soundcloud.com:443/x", PARAMS).is_ok());
    }

    #[test]
    fn dropped_parameters_are_put_back() {
        let t = transport("https://api.soundcloud.com");
        let url = next_page_url(
            &t,
            "/x",
            "https://api.soundcloud.com/playlists/1/tracks?offset=200",
            PARAMS,
        )
        .unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert!(pairs.contains(&("offset".into(), "200".into())));
        assert!(pairs.contains(&("linked_partitioning".into(), "true".into())));
        assert!(pairs.contains(&("limit".into(), "200".into())));
        assert!(pairs.contains(&("access".into(), ALL_ACCESS.into())));
    }

    #[test]
    fn page_size_stands_for_limit() {
        let t = transport("https://api.soundcloud.com");
        let url = next_page_url(&t, "/x", "/me/followings?page_size=200&cursor=9", PARAMS).unwrap();
        assert!(!url.query_pairs().any(|(k, _)| k == "limit"), "{url}");
    }

    #[test]
    fn relative_next_href_resolves_against_the_api_base() {
        let t = transport("http://127.0.0.1:8080");
        let url = next_page_url(&t, "/x", "/me/tracks?cursor=2", &[]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/me/tracks?cursor=2");
    }

    #[test]
    fn reordered_queries_are_the_same_page() {
        let a = Url::parse("https://h/x?a=1&b=2").unwrap();
        let b = Url::parse("https://h:443/x?b=2&a=1").unwrap();
        let c = Url::parse("https://h/x?a=1&b=3").unwrap();
        assert_eq!(page_key(&a), page_key(&b));
        assert_ne!(page_key(&a), page_key(&c));
    }
}
