//! The handlers: each takes the current index once, builds what its template shows, and renders.

use std::sync::{Arc, LazyLock};

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Value, context};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use schemas::index::{IndexEntry, Version};
use serde::Serialize;

use crate::gallery::{self, Query};
use crate::{Catalog, Icon, Index, assets, detail, highlight};

/// Where the server mounts the viewer; every link the pages hold starts with it.
pub const BASE: &str = "/viewer";

/// Characters escaped in a path segment (RFC 3986 unreserved ones are kept).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Pages say what they are and where they come from, and nothing else may run in them.
const CSP: &str = "default-src 'self'; img-src * data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // minijinja's HTML escaping also escapes `/`, which makes every URL in a page longer and
    // harder to read; the five characters below are all HTML needs escaped.
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(text) if !value.is_safe() && state.auto_escape() != minijinja::AutoEscape::None => {
            let mut escaped = String::with_capacity(text.len());
            highlight::escape_into(&mut escaped, text);
            out.write_str(&escaped).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("gallery.html", include_str!("../templates/gallery.html")),
        ("gallery_facets.html", include_str!("../templates/gallery_facets.html")),
        ("gallery_results.html", include_str!("../templates/gallery_results.html")),
        ("gallery_fragment.html", include_str!("../templates/gallery_fragment.html")),
        ("detail.html", include_str!("../templates/detail.html")),
        ("versions.html", include_str!("../templates/versions.html")),
        ("not_found.html", include_str!("../templates/not_found.html")),
    ] {
        env.add_template(name, source).expect("the viewer's templates are valid");
    }
    env
});

/// The handlers' state.
#[derive(Clone)]
pub struct Viewer {
    catalog: Arc<dyn Catalog>,
}

impl Viewer {
    pub fn new(catalog: Arc<dyn Catalog>) -> Viewer {
        Viewer { catalog }
    }

    fn registry(&self) -> &str {
        self.catalog.registry_name()
    }

    /// Renders `template` with what every page has (registry, digest, assets) added to `ctx`.
    fn render(&self, status: StatusCode, template: &str, index: &dyn Index, page: &str, ctx: Value) -> Response {
        let common = context! {
            registry => self.registry(),
            digest => index.digest(),
            assets_version => assets::version(),
            page => page,
        };
        let body = TEMPLATES
            .get_template(template)
            .and_then(|t| t.render(context! { ..ctx, ..common }))
            .unwrap_or_else(|e| panic!("the template {template} renders: {e:#}"));
        html(status, body)
    }

    fn detail_href(&self, name: &str) -> String {
        format!("{BASE}/devfiles/{}/{}", segment(self.registry()), segment(name))
    }
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Pages show the index of the moment; a reload must ask again.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

// ---------------------------------------------------------------------------------------------
// Gallery

/// A card of the gallery.
#[derive(Debug, Serialize)]
struct Card<'a> {
    name: &'a str,
    display_name: &'a str,
    description: &'a str,
    type_name: &'static str,
    type_label: &'static str,
    provider: &'a str,
    language: &'a str,
    tags: &'a [String],
    deprecated: bool,
    versions: usize,
    icon: Option<String>,
    initial: String,
    href: String,
    last_modified: String,
    last_modified_iso: &'a str,
}

fn card<'a>(viewer: &Viewer, entry: &'a IndexEntry) -> Card<'a> {
    let display_name = gallery::display_name(entry);
    Card {
        name: &entry.name,
        display_name,
        description: &entry.description,
        type_name: gallery::type_name(entry),
        type_label: type_label(entry),
        provider: &entry.provider,
        language: &entry.language,
        tags: &entry.tags,
        deprecated: gallery::is_deprecated(entry),
        versions: entry.versions.len(),
        icon: icon_href(entry),
        initial: initial(display_name),
        href: viewer.detail_href(&entry.name),
        last_modified: entry.last_modified.as_deref().map(day).unwrap_or_default(),
        last_modified_iso: entry.last_modified.as_deref().unwrap_or_default(),
    }
}

fn gallery_context(viewer: &Viewer, index: &dyn Index, query: &Query) -> Value {
    let entries = index.entries();
    let results = gallery::search(entries, query);
    let cards: Vec<Card> = results.entries.iter().map(|e| card(viewer, e)).collect();
    let search_only = Query { search: query.search.clone(), ..Query::default() };
    context! {
        cards => cards,
        facets => results.facets,
        total => entries.len(),
        filtered => query.is_filtered(),
        search => query.search,
        search_only => format!("{BASE}?{}", search_only.to_query_string()),
        sort => query.sort.param(),
        query_text => query.search,
    }
}

/// `GET /viewer`: the gallery.
pub async fn gallery(State(viewer): State<Viewer>, RawQuery(raw): RawQuery) -> Response {
    let index = viewer.catalog.index();
    let query = Query::parse(raw.as_deref().unwrap_or_default());
    let ctx = gallery_context(&viewer, index.as_ref(), &query);
    let ctx = context! { live_url => format!("{BASE}/fragments/gallery"), ..ctx };
    viewer.render(StatusCode::OK, "gallery.html", index.as_ref(), "gallery", ctx)
}

/// `GET /viewer/fragments/gallery`: the facets and cards of a gallery query, for open pages to
/// swap in when the index changes. Carries the digest it was rendered from in `X-Index-Digest`.
pub async fn gallery_fragment(State(viewer): State<Viewer>, RawQuery(raw): RawQuery) -> Response {
    let index = viewer.catalog.index();
    let query = Query::parse(raw.as_deref().unwrap_or_default());
    let ctx = gallery_context(&viewer, index.as_ref(), &query);
    fragment(viewer.render(StatusCode::OK, "gallery_fragment.html", index.as_ref(), "fragment", ctx), index.as_ref())
}

fn fragment(mut response: Response, index: &dyn Index) -> Response {
    if let Ok(digest) = HeaderValue::from_str(index.digest()) {
        response.headers_mut().insert("x-index-digest", digest);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Detail

#[derive(Debug, Serialize)]
struct VersionLink<'a> {
    version: &'a str,
    default: bool,
    selected: bool,
    href: String,
}

#[derive(Debug, Serialize)]
struct StarterLink {
    name: String,
    description: String,
    source: String,
    href: String,
}

#[derive(Debug, Serialize)]
struct GitSource<'a> {
    /// Name, URL, and whether the URL may be a link (`http(s)` only).
    remotes: Vec<(&'a str, &'a str, bool)>,
    revision: &'a str,
    sub_dir: &'a str,
}

/// What the request names: the entry and version, or the not-found page to answer.
struct Selected<'a> {
    entry: &'a IndexEntry,
    version: Option<&'a Version>,
}

#[expect(clippy::result_large_err, reason = "a request answers the page either way; nothing is passed up")]
fn select<'a>(
    viewer: &Viewer,
    index: &'a dyn Index,
    registry: &str,
    name: &str,
    raw: Option<&str>,
) -> Result<Selected<'a>, Response> {
    let requested = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "devfile-version")
        .map(|(_, v)| v.into_owned());
    let entry = index.entries().iter().find(|e| e.name == name);
    if !registry.eq_ignore_ascii_case(viewer.registry()) {
        let mut links = Vec::new();
        if entry.is_some() {
            links.push((format!("{name} in {}", viewer.registry()), viewer.detail_href(name)));
        }
        return Err(not_found_page(
            viewer,
            index,
            "No such registry",
            &format!("This server serves the {} registry; there is no registry named {registry}.", viewer.registry()),
            links,
        ));
    }
    let Some(entry) = entry else {
        // Entries whose name or display name contains what was asked for, as suggestions.
        let needle = name.to_lowercase();
        let links = index
            .entries()
            .iter()
            .filter(|e| {
                let n = e.name.to_lowercase();
                !needle.is_empty()
                    && (n.contains(&needle) || needle.contains(&n) || e.display_name.to_lowercase().contains(&needle))
            })
            .take(10)
            .map(|e| (gallery::display_name(e).to_string(), viewer.detail_href(&e.name)))
            .collect();
        return Err(not_found_page(
            viewer,
            index,
            "No such stack or sample",
            &format!("The {} registry has no stack or sample named {name}.", viewer.registry()),
            links,
        ));
    };
    match detail::select(entry, requested.as_deref()) {
        Ok(version) => Ok(Selected { entry, version }),
        Err(()) => {
            let links = entry
                .versions
                .iter()
                .map(|v| {
                    let label = if v.default { format!("{} (default)", v.version) } else { v.version.clone() };
                    (label, version_href(viewer, entry, &v.version))
                })
                .collect();
            Err(not_found_page(
                viewer,
                index,
                "No such version",
                &format!(
                    "{} has no version {}. It has these versions:",
                    gallery::display_name(entry),
                    requested.unwrap_or_default()
                ),
                links,
            ))
        }
    }
}

fn version_href(viewer: &Viewer, entry: &IndexEntry, version: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new()).append_pair("devfile-version", version).finish();
    format!("{}?{query}", viewer.detail_href(&entry.name))
}

fn versions_context(viewer: &Viewer, selected: &Selected<'_>) -> Value {
    let versions: Vec<VersionLink> = selected
        .entry
        .versions
        .iter()
        .map(|v| VersionLink {
            version: &v.version,
            default: v.default,
            selected: selected.version.is_some_and(|s| s.version == v.version),
            href: version_href(viewer, selected.entry, &v.version),
        })
        .collect();
    context! { versions => versions, detail_href => viewer.detail_href(&selected.entry.name) }
}

/// `GET /viewer/devfiles/{registry}/{name}?devfile-version=<v>`: one stack or sample version.
pub async fn detail(
    State(viewer): State<Viewer>,
    Path((registry, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let index = viewer.catalog.index();
    let selected = match select(&viewer, index.as_ref(), &registry, &name, raw.as_deref()) {
        Ok(selected) => selected,
        Err(response) => return response,
    };
    let (entry, version) = (selected.entry, selected.version);
    let version_name = version.map_or("default", |v| v.version.as_str());
    let yaml = index.devfile(&entry.name, version_name).await;
    let parts = yaml.as_deref().map(detail::parts).unwrap_or_default();

    let name_segment = segment(&entry.name);
    let (raw_href, starter_base) = match version {
        Some(v) => {
            let v = segment(&v.version);
            (format!("/devfiles/{name_segment}/{v}"), format!("/devfiles/{name_segment}/{v}/starter-projects"))
        }
        None => (format!("/devfiles/{name_segment}"), format!("/devfiles/{name_segment}/starter-projects")),
    };
    // The devfile's starter projects (with their sources), else the names the index lists.
    let mut starter_projects: Vec<StarterLink> = parts
        .starter_projects
        .iter()
        .map(|p| StarterLink {
            name: p.name.clone(),
            description: p.description.clone(),
            source: p.source.clone(),
            href: format!("{starter_base}/{}", segment(&p.name)),
        })
        .collect();
    if starter_projects.is_empty() {
        let names = version.map_or(&entry.starter_projects, |v| &v.starter_projects);
        starter_projects = names
            .iter()
            .map(|name| StarterLink {
                name: name.clone(),
                description: String::new(),
                source: String::new(),
                href: format!("{starter_base}/{}", segment(name)),
            })
            .collect();
    }
    let git = version.and_then(|v| v.git.as_ref()).or(entry.git.as_ref()).map(|git| GitSource {
        remotes: git.remotes.iter().map(|(k, v)| (k.as_str(), v.as_str(), safe_url(v).is_some())).collect(),
        revision: &git.revision,
        sub_dir: &git.sub_dir,
    });
    let pick = |own: &'_ [String], top: &'_ [String]| -> Vec<String> {
        if own.is_empty() { top.to_vec() } else { own.to_vec() }
    };
    let description = version.map(|v| v.description.as_str()).filter(|d| !d.is_empty()).unwrap_or(&entry.description);
    let last_modified = version.and_then(|v| v.last_modified.as_deref()).or(entry.last_modified.as_deref());
    let parent = version.and_then(|v| v.parent.as_ref()).map(|p| {
        if !p.uri.is_empty() {
            p.uri.clone()
        } else {
            [p.id.as_str(), p.version.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ")
                + &if p.registry_url.is_empty() { String::new() } else { format!(" from {}", p.registry_url) }
        }
    });
    let display_name = gallery::display_name(entry);
    let ctx = context! {
        entry => context! {
            name => entry.name,
            display_name => display_name,
            initial => initial(display_name),
            type_name => gallery::type_name(entry),
            type_label => type_label(entry),
            deprecated => gallery::is_deprecated(entry),
            provider => entry.provider,
            project_type => entry.project_type,
            language => entry.language,
            support_url => safe_url(&entry.support_url),
            icon => icon_href(entry),
        },
        version => version.map(|v| context! { version => v.version, default => v.default }),
        description => description,
        tags => pick(version.map_or(&[][..], |v| &v.tags), &entry.tags),
        architectures => pick(version.map_or(&[][..], |v| &v.architectures), &entry.architectures),
        schema_version => version.map(|v| v.schema_version.clone()).filter(|s| !s.is_empty()).unwrap_or(parts.schema_version.clone()),
        last_modified => last_modified.map(day),
        last_modified_iso => last_modified,
        parent => parent.or(parts.parent.clone()),
        starter_projects => starter_projects,
        commands => parts.commands,
        links => version.map(|v| v.links.iter().collect::<Vec<_>>()).unwrap_or_default(),
        resources => version.map(|v| v.resources.clone()).unwrap_or_default(),
        git => git,
        raw_href => raw_href,
        devfile_html => yaml.as_deref().map(highlight::yaml_to_html),
        live_url => format!("{BASE}/fragments/devfiles/{}/{name_segment}", segment(viewer.registry())),
        ..versions_context(&viewer, &selected)
    };
    viewer.render(StatusCode::OK, "detail.html", index.as_ref(), "detail", ctx)
}

/// `GET /viewer/fragments/devfiles/{registry}/{name}?devfile-version=<v>`: the version picker
/// of a detail page as the current index has it, for open pages to offer new versions.
pub async fn versions_fragment(
    State(viewer): State<Viewer>,
    Path((registry, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let index = viewer.catalog.index();
    let response = match select(&viewer, index.as_ref(), &registry, &name, raw.as_deref()) {
        Ok(selected) => {
            let ctx = versions_context(&viewer, &selected);
            viewer.render(StatusCode::OK, "versions.html", index.as_ref(), "fragment", ctx)
        }
        // The version shown is gone: the picker of the default version still says what exists.
        Err(response) => match select(&viewer, index.as_ref(), &registry, &name, None) {
            Ok(selected) => {
                let ctx = versions_context(&viewer, &selected);
                viewer.render(StatusCode::OK, "versions.html", index.as_ref(), "fragment", ctx)
            }
            Err(_) => response,
        },
    };
    fragment(response, index.as_ref())
}

// ---------------------------------------------------------------------------------------------
// Icons, not found

/// `GET /viewer/icons/{name}`: the entry's icon, or a redirect to where it is.
pub async fn icon(State(viewer): State<Viewer>, Path(name): Path<String>) -> Response {
    match viewer.catalog.index().icon(&name) {
        Some(Icon::Bytes { content_type, bytes }) => {
            let content_type =
                HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, content_type);
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            // An SVG opened on its own must not run scripts.
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            );
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            response
        }
        Some(Icon::Url(url)) if safe_url(&url).is_some() => match HeaderValue::from_str(&url) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Any other path under `/viewer`: a page that says so (and a GET with a trailing slash is sent
/// to the path without it, as everywhere on the server).
pub async fn fallback(State(viewer): State<Viewer>, OriginalUri(uri): OriginalUri) -> Response {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() != path.len() && !trimmed.is_empty() && !trimmed.starts_with("//") {
        let location = match uri.query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_string(),
        };
        if let Ok(location) = HeaderValue::from_str(&location) {
            return (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]).into_response();
        }
    }
    let index = viewer.catalog.index();
    not_found_page(&viewer, index.as_ref(), "Page not found", &format!("There is no page at {path}."), Vec::new())
}

fn not_found_page(
    viewer: &Viewer,
    index: &dyn Index,
    title: &str,
    message: &str,
    links: Vec<(String, String)>,
) -> Response {
    let ctx = context! { title => title, message => message, links => links };
    viewer.render(StatusCode::NOT_FOUND, "not_found.html", index, "not-found", ctx)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn type_label(entry: &IndexEntry) -> &'static str {
    if gallery::type_name(entry) == "sample" { "Sample" } else { "Stack" }
}

/// The viewer's URL of an entry's icon, when it has one.
fn icon_href(entry: &IndexEntry) -> Option<String> {
    (!entry.icon.trim().is_empty()).then(|| format!("{BASE}/icons/{}", segment(&entry.name)))
}

/// The first letter of a name, for entries without an icon.
fn initial(name: &str) -> String {
    name.chars().find(|c| c.is_alphanumeric()).map(|c| c.to_uppercase().to_string()).unwrap_or_default()
}

/// `2024-05-01T10:00:00Z` → `2024-05-01`.
fn day(timestamp: &str) -> String {
    timestamp.get(..10).unwrap_or(timestamp).to_string()
}

/// Only `http(s)` URLs become links (a `javascript:` support URL must not).
fn safe_url(url: &str) -> Option<&str> {
    let lower = url.trim().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url.trim())
}
