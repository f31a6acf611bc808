//! The viewer's pages over HTTP (`app(state)` driven with `oneshot`): the gallery and every
//! detail page of the community registry (sizes, counts), facet counts, 404 pages, escaping of
//! what registries write, fragments for live updates, and a stack that enters the index.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use index_server::icons::{IconOptions, Icons};
use index_server::{AppState, ServeOptions, Shared, Snapshot, SnapshotCell, app, embedded};
use serde_json::Value;
use tower::ServiceExt;

/// No page of the community registry may weigh more than this (icons are separate requests).
const MAX_PAGE_BYTES: usize = 200 * 1024;

struct Page {
    status: StatusCode,
    content_type: String,
    location: String,
    body: String,
}

async fn get(state: &AppState, uri: &str) -> Page {
    let response = app(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let header = |name| response.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (content_type, location) = (header(header::CONTENT_TYPE), header(header::LOCATION));
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Page { status, content_type, location, body: String::from_utf8(body.to_vec()).unwrap() }
}

fn load(source: &Path, options: ServeOptions) -> AppState {
    let loaded = embedded::load(source.to_str().unwrap(), None).expect("the registry loads");
    // Icons on the internet are not fetched in tests.
    AppState::with_cell(
        SnapshotCell::with_icons(loaded.snapshot, Icons::new(IconOptions::offline())),
        loaded.store,
        options,
    )
}

fn community() -> &'static AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(|| load(&tests::community_registry(), ServeOptions::default()))
}

fn default_registry() -> &'static AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(|| load(&tests::workspace().join("stacks"), ServeOptions::default()))
}

/// The `data-name` of every card, in page order.
fn cards(html: &str) -> Vec<&str> {
    html.split("<li class=\"card\" data-name=\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect()
}

/// The count shown next to a facet value (`name=value`).
fn facet_count(html: &str, param: &str, value: &str) -> Option<usize> {
    let input = html.find(&format!("name=\"{param}\" value=\"{value}\""))?;
    let rest = &html[input..];
    let count = &rest[rest.find("class=\"count\"")?..];
    let number = &count[count.find('>')? + 1..count.find("</span>")?];
    number.parse().ok()
}

/// Entries of the index (v2, all).
async fn index(state: &AppState) -> Vec<Value> {
    let page = get(state, "/v2index/all").await;
    serde_json::from_str::<Value>(&page.body).unwrap().as_array().unwrap().clone()
}

#[tokio::test]
async fn the_gallery_lists_every_entry_of_the_community_registry_under_200_kb() {
    let state = community();
    let page = get(state, "/viewer").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.body.len() < MAX_PAGE_BYTES, "the gallery is {} bytes", page.body.len());
    let names = cards(&page.body);
    assert_eq!(names.len(), 36, "31 stacks and 5 samples");
    // Sorted by display name; every card links to its detail page and lazy-loads its icon.
    assert!(page.body.contains("href=\"/viewer/devfiles/Community/java-maven\""));
    assert_eq!(page.body.matches("loading=\"lazy\"").count(), page.body.matches("<img ").count());
    assert!(page.body.matches("<img ").count() > 30);
    assert!(!page.body.contains("data:image"), "icons are separate requests");
    assert!(page.body.contains("<label for=\"search\">"));
    // No resource from elsewhere: the page works air-gapped.
    assert!(!page.body.contains("src=\"http") && !page.body.contains("href=\"https://fonts"));

    // Type facet counts: 31 stacks, 5 samples.
    assert_eq!(facet_count(&page.body, "types", "stack"), Some(31));
    assert_eq!(facet_count(&page.body, "types", "sample"), Some(5));
}

#[tokio::test]
async fn facet_counts_agree_with_what_ticking_them_lists() {
    let state = community();
    let entries = index(state).await;
    let with_tag = |tag: &str, java: bool| {
        entries
            .iter()
            .filter(|e| e["type"] == "stack" || !java)
            .filter(|e| e["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == tag)))
            .filter(|e| {
                !java
                    || ["name", "displayName", "description"]
                        .iter()
                        .any(|k| e[*k].as_str().unwrap_or_default().to_lowercase().contains("java"))
                    || e["tags"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().to_lowercase().contains("java"))
            })
            .count()
    };
    let page = get(state, "/viewer?search=java&types=stack").await;
    let maven = facet_count(&page.body, "tags", "Maven").unwrap();
    assert_eq!(maven, with_tag("Maven", true));
    // The SPEC §8 example: exactly the counted cards.
    let narrowed = get(state, "/viewer?search=java&types=stack&tags=Maven").await;
    assert_eq!(cards(&narrowed.body).len(), maven);
    assert!(narrowed.body.contains("name=\"tags\" value=\"Maven\" checked"));
    // Values of one facet add up: Maven or Gradle.
    let either = get(state, "/viewer?tags=Maven&tags=Gradle").await;
    let expected = entries
        .iter()
        .filter(|e| e["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "Maven" || t == "Gradle")))
        .count();
    assert_eq!(cards(&either.body).len(), expected);
    // Deprecated entries are the ones tagged so.
    let deprecated =
        entries.iter().filter(|e| e["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "Deprecated"))).count();
    let page = get(state, "/viewer?deprecated=true").await;
    assert_eq!(cards(&page.body).len(), deprecated);
    // Sorting by last modification puts the newest first.
    let page = get(state, "/viewer?sort=modified").await;
    let first = cards(&page.body)[0];
    let newest = entries.iter().filter_map(|e| e["lastModified"].as_str().map(|d| (d, e))).max_by_key(|(d, _)| *d);
    if let Some((_, newest)) = newest {
        assert_eq!(first, newest["name"].as_str().unwrap());
    }
    // Nothing matches: a page that says so, still 200.
    let page = get(state, "/viewer?search=no-such-thing-at-all").await;
    assert_eq!((page.status, cards(&page.body).len()), (StatusCode::OK, 0));
    assert!(page.body.contains("Nothing matches"));
}

#[tokio::test]
async fn every_detail_page_of_the_community_registry_renders_under_200_kb() {
    let state = community();
    let mut pages = 0;
    for entry in index(state).await {
        let name = entry["name"].as_str().unwrap();
        let versions: Vec<&str> = entry["versions"]
            .as_array()
            .map(|v| v.iter().map(|v| v["version"].as_str().unwrap()).collect())
            .unwrap_or_default();
        let mut uris = vec![format!("/viewer/devfiles/Community/{name}")];
        uris.extend(versions.iter().map(|v| format!("/viewer/devfiles/Community/{name}?devfile-version={v}")));
        for uri in uris {
            let page = get(state, &uri).await;
            assert_eq!(page.status, StatusCode::OK, "{uri}");
            assert!(page.body.len() < MAX_PAGE_BYTES, "{uri} is {} bytes", page.body.len());
            pages += 1;
        }
    }
    assert!(pages > 90, "{pages}");

    // A stack version: its devfile highlighted, raw link and starter projects of that version.
    let page = get(state, "/viewer/devfiles/community/java-maven?devfile-version=1.2.0").await;
    assert_eq!(page.status, StatusCode::OK, "the registry name is matched ignoring case");
    assert!(page.body.contains("<span class=\"y-key\">schemaVersion</span>"));
    assert!(page.body.contains("href=\"/devfiles/java-maven/1.2.0\">Raw</a>"));
    assert!(page.body.contains("href=\"/devfiles/java-maven/1.2.0/starter-projects/springbootproject\""));
    assert!(page.body.contains("<option value=\"1.2.0\" selected>"));
    assert!(page.body.contains("(default)"));
    assert!(page.body.contains("<h2 id=\"commands-heading\">Commands</h2>"));
    // A sample shows its Git source.
    let sample = index(state).await.into_iter().find(|e| e["type"] == "sample").unwrap();
    let page = get(state, &format!("/viewer/devfiles/Community/{}", sample["name"].as_str().unwrap())).await;
    assert!(page.body.contains("Git source"), "{}", page.body);
}

#[tokio::test]
async fn unknown_stacks_versions_registries_and_pages_are_helpful_404s() {
    let state = default_registry();
    for (uri, says) in [
        ("/viewer/devfiles/Community/jav", "has no stack or sample named jav"),
        ("/viewer/devfiles/Community/java-maven?devfile-version=9.9.9", "has no version 9.9.9"),
        ("/viewer/devfiles/Elsewhere/go", "there is no registry named Elsewhere"),
        ("/viewer/nothing/here", "There is no page at /viewer/nothing/here"),
    ] {
        let page = get(state, uri).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(page.content_type, "text/html; charset=utf-8", "{uri}");
        assert!(page.body.contains(says), "{uri}: {}", page.body);
        assert!(page.body.contains("href=\"/viewer\""), "{uri}: a way back");
    }
    // Suggestions and the versions that exist.
    let page = get(state, "/viewer/devfiles/Community/jav").await;
    assert!(page.body.contains("href=\"/viewer/devfiles/Community/java-maven\""));
    let page = get(state, "/viewer/devfiles/Community/java-maven?devfile-version=9.9.9").await;
    assert!(page.body.contains("href=\"/viewer/devfiles/Community/java-maven?devfile-version=1.3.0\">1.3.0 (default)"));
    let page = get(state, "/viewer/devfiles/Elsewhere/go").await;
    assert!(page.body.contains("href=\"/viewer/devfiles/Community/go\""));
    // A trailing slash is redirected, as everywhere.
    let page = get(state, "/viewer/?search=go").await;
    assert_eq!((page.status, page.location.as_str()), (StatusCode::MOVED_PERMANENTLY, "/viewer?search=go"));
}

#[tokio::test]
async fn what_registries_write_is_escaped() {
    // A registry whose go stack has markup in its description, tags and devfile.
    let dir = tempfile::tempdir().unwrap();
    tests::copy_tree(&tests::workspace().join("stacks"), dir.path()).unwrap();
    let devfile = dir.path().join("stacks/go/devfile.yaml");
    let text = std::fs::read_to_string(&devfile).unwrap();
    let evil = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    let text: Vec<String> = text
        .lines()
        .map(|line| match line {
            l if l.starts_with("  description:") => format!("  description: \"{evil} go\""),
            l if l.starts_with("  displayName:") => "  displayName: '\"><b>bold</b>'".to_string(),
            l if l.starts_with("  tags:") => format!("{line}\n    - \"<i>tag</i>\""),
            l if l.starts_with("schemaVersion:") => format!("# {evil}\n{line}"),
            _ => line.to_string(),
        })
        .collect();
    let text = text.join("\n") + "\n";
    std::fs::write(&devfile, text).unwrap();
    let state = load(dir.path(), ServeOptions::default());
    assert!(index(&state).await.iter().any(|e| e["name"] == "go"), "the go stack is still valid");
    for uri in ["/viewer", "/viewer/devfiles/Community/go", "/viewer?search=%3Cscript%3E", "/viewer/fragments/gallery"]
    {
        let page = get(&state, uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        for raw in ["<script>alert", "<img src=x", "<b>bold", "<i>tag"] {
            assert!(!page.body.contains(raw), "{uri} holds {raw} unescaped");
        }
        assert!(page.body.contains("&lt;script&gt;"), "{uri}: the text is shown, escaped");
    }
    // Scripts could not run anyway: pages forbid inline scripts.
    let response = app(state.clone()).oneshot(Request::get("/viewer").body(Body::empty()).unwrap()).await.unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
}

#[tokio::test]
async fn a_stack_that_enters_the_index_is_listed_on_the_next_request_and_in_fragments() {
    let state =
        load(&tests::workspace().join("stacks"), ServeOptions { registry_name: "Team".into(), ..Default::default() });
    let before = get(&state, "/viewer").await;
    assert!(before.body.contains("<title>Team devfile registry</title>"));
    assert!(!cards(&before.body).contains(&"go-next"));
    let fragment = get(&state, "/viewer/fragments/gallery?types=stack").await;
    assert!(fragment.body.starts_with("<div id=\"facets\">"), "{}", &fragment.body[..100]);
    assert!(!fragment.body.contains("<html"));

    // The same index with one more stack.
    let mut document = state.snapshots.current().document().clone();
    let mut next = document.stacks.iter().find(|e| e.name == "go").unwrap().clone();
    next.name = "go-next".into();
    next.display_name = "Go Next".into();
    document.stacks.push(next);
    let digest_before = state.snapshots.current().digest().to_string();
    state.snapshots.swap(Snapshot::new(document, None));
    let digest_after = state.snapshots.current().digest().to_string();
    assert_ne!(digest_before, digest_after);

    let after = get(&state, "/viewer").await;
    assert!(cards(&after.body).contains(&"go-next"));
    assert!(after.body.contains(&format!("data-digest=\"{digest_after}\"")));
    let fragment = get(&state, "/viewer/fragments/gallery?types=stack").await;
    assert!(cards(&fragment.body).contains(&"go-next"));
    let detail = get(&state, "/viewer/devfiles/Team/go-next").await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Go Next"));
    // The version picker of a detail page, for open pages to offer new versions.
    let picker = get(&state, "/viewer/fragments/devfiles/Team/java-maven?devfile-version=1.2.0").await;
    assert!(picker.body.starts_with("<div id=\"version-picker\""));
    assert!(picker.body.contains("data-versions=\"2.0.0,1.3.0,1.2.0\""));
}

#[tokio::test]
async fn assets_are_embedded_and_cached_by_version() {
    let state = default_registry();
    let page = get(state, "/viewer").await;
    let start = page.body.find("/viewer/assets/viewer.css?v=").unwrap();
    let css = &page.body[start..start + page.body[start..].find('"').unwrap()];
    let response = app(state.clone()).oneshot(Request::get(css).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    let js = get(state, "/viewer/assets/viewer.js").await;
    assert_eq!(js.content_type, "text/javascript; charset=utf-8");
    assert!(js.body.contains("new EventSource(\"/api/events\")"));
    assert_eq!(get(state, "/viewer/assets/other.js").await.status, StatusCode::NOT_FOUND);
    // Icons: a remote one not fetched (tests are offline) sends the browser to its URL.
    let icon = get(state, "/viewer/icons/go").await;
    assert_eq!(icon.status, StatusCode::FOUND);
    assert!(icon.location.starts_with("https://"), "{}", icon.location);
    assert_eq!(get(state, "/viewer/icons/no-such-stack").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn headless_mode_has_no_viewer() {
    let headless = AppState::from(Shared {
        options: Arc::new(ServeOptions { headless: true, ..ServeOptions::default() }),
        ..Shared::clone(default_registry())
    });
    for uri in ["/viewer", "/viewer/devfiles/Community/go", "/viewer/assets/viewer.css"] {
        let page = get(&headless, uri).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(page.body, "registry viewer is not available in headless mode");
    }
}
