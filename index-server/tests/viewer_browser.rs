//! The viewer in a real browser (headless Chromium through chromedriver, see `tests::browser`),
//! against `index-server` processes: the gallery of the community registry with search and
//! facets, a detail page switching versions and downloading a starter project, and a stack
//! published through the update API appearing on a gallery page that is already open.
//! Screenshots go to `target/viewer-screenshots/`.

use std::io::{Cursor, Write};
use std::path::Path;

use serde_json::Value;
use tests::browser::Browser;
use tests::updates::{Client, World, add_stack, edit};
use tests::{ServerProcess, copy_tree, workspace};

const BIN: &str = env!("CARGO_BIN_EXE_index-server");

/// The number in the results heading (`15 of 36 stacks and samples match`).
async fn shown(browser: &Browser) -> usize {
    let heading = browser.find("#results-heading").await.text().await.unwrap();
    heading.split_whitespace().next().unwrap().parse().unwrap_or_else(|_| panic!("{heading}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gallery_lists_the_community_registry_and_search_and_facets_narrow_it() {
    let source = tests::community_registry();
    let server = ServerProcess::start(Path::new(BIN), &["--source", source.to_str().unwrap()], &[]);
    let browser = Browser::open(1400, 1000).await;
    browser.goto(&format!("{}/viewer", server.url())).await;
    browser.find(".card").await;
    assert_eq!(browser.count(".card").await, 36, "31 stacks and 5 samples");
    assert_eq!(shown(&browser).await, 36);
    browser.screenshot("gallery").await;

    // Search: typing and Enter submit the form; the query string is the state.
    let search = browser.find("#search").await;
    search.send_keys("java\n").await.unwrap();
    browser.wait_until("the search applies", "return location.search.includes('search=java')").await;
    browser.find("#results").await;
    let java = browser.count(".card").await;
    assert!(java > 1 && java < 36, "{java} cards for java");
    assert_eq!(shown(&browser).await, java);
    for name in ["java-maven", "java-quarkus"] {
        assert_eq!(browser.count(&format!(".card[data-name='{name}']")).await, 1, "{name}");
    }
    assert_eq!(browser.count(".card[data-name='go']").await, 0);

    // A facet: ticking a tag applies at once (with JavaScript), and its count was right.
    browser.find("label[for^='f-tags-']").await;
    let maven = browser
        .eval(
            "return [...document.querySelectorAll('.facet-tags input')].find(i => i.value === 'Maven').id",
            Vec::new(),
        )
        .await;
    let maven = maven.as_str().expect("a Maven tag facet").to_string();
    let expected: usize =
        browser.find(&format!("label[for='{maven}'] .count")).await.text().await.unwrap().parse().unwrap();
    browser.find(&format!("label[for='{maven}']")).await.click().await.unwrap();
    browser.wait_until("the facet applies", "return location.search.includes('tags=Maven')").await;
    browser.find("#results").await;
    assert_eq!(browser.count(".card").await, expected);
    assert!(expected < java);
    assert!(browser.current_url().await.contains("search=java"));
    assert_eq!(browser.eval(&format!("return document.getElementById('{maven}').checked"), Vec::new()).await, true);

    // The back button goes back to the search alone.
    browser.client.back().await.unwrap();
    browser.wait_until("back to the search", "return !location.search.includes('tags=')").await;
    assert_eq!(browser.count(".card").await, java);

    // A phone's width.
    browser.goto(&format!("{}/viewer", server.url())).await;
    browser.resize(390, 844).await;
    browser.find(".card").await;
    browser.screenshot("gallery-phone").await;
    browser.close().await;
}

/// A zip with one file.
fn make_zip(name: &str, contents: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(contents.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_detail_page_switches_versions_and_downloads_a_starter_project() {
    // The default registry, with an offline zip of java-maven 1.2.0's starter project.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&workspace().join("stacks"), dir.path()).unwrap();
    let zip = make_zip("README.md", "offline starter of java-maven 1.2.0\n");
    std::fs::write(dir.path().join("stacks/java-maven/1.2.0/springbootproject-offline.zip"), &zip).unwrap();
    let server = ServerProcess::start(Path::new(BIN), &["--source", dir.path().to_str().unwrap()], &[]);
    let browser = Browser::open(1280, 1600).await;
    browser.goto(&format!("{}/viewer/devfiles/Community/java-maven", server.url())).await;
    let selected = browser.find("#devfile-version").await.prop("value").await.unwrap();
    assert_eq!(selected.as_deref(), Some("1.3.0"), "the default version is shown first");
    let header = browser.find(".detail-head .name").await.text().await.unwrap();
    assert!(header.contains("version 1.3.0 (default)"), "{header}");
    assert!(browser.find("#devfile-yaml").await.text().await.unwrap().contains("schemaVersion"));
    browser.screenshot("detail").await;

    // Choosing a version in the selector shows it.
    browser.find("#devfile-version").await.select_by_value("1.2.0").await.unwrap();
    browser.wait_until("the version changes", "return location.search.includes('devfile-version=1.2.0')").await;
    let header = browser.find(".detail-head .name").await.text().await.unwrap();
    assert!(header.contains("version 1.2.0") && !header.contains("default"), "{header}");
    let link = browser.find("a.download").await;
    let href = link.attr("href").await.unwrap().unwrap();
    assert_eq!(href, "/devfiles/java-maven/1.2.0/starter-projects/springbootproject");

    // The link downloads the zip of that version.
    link.click().await.unwrap();
    let downloaded = browser.download("springbootproject.zip").await;
    assert!(downloaded.starts_with(b"PK"), "a zip");
    assert_eq!(downloaded, zip);

    // An unknown version is a page that says which versions exist.
    browser.goto(&format!("{}/viewer/devfiles/Community/java-maven?devfile-version=9.9.9", server.url())).await;
    let text = browser.find("main").await.text().await.unwrap();
    assert!(text.contains("No such version") && text.contains("1.3.0"), "{text}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_stack_appears_on_an_open_gallery_without_navigation() {
    let mut world = World::new(Path::new(BIN));
    let server = world.embedded_server();
    let client = Client::of(&server);
    let browser = Browser::open(1280, 1000).await;
    browser.goto(&format!("{}/viewer?types=stack", server.url())).await;
    browser.find(".card").await;
    let before = browser.count(".card").await;
    assert_eq!(browser.count(".card[data-name='go-next']").await, 0);
    // A mark that a reload would lose; wait until the page listens to /api/events.
    browser.eval("window.viewerTestMark = 'still here'; return true", Vec::new()).await;
    browser.wait_until("the page subscribes", "return document.body.dataset.subscribed === 'true'").await;
    let gallery = browser.client.window().await.unwrap();
    // And a detail page in another tab.
    let tab = browser.client.new_window(true).await.unwrap();
    browser.client.switch_to_window(tab.handle).await.unwrap();
    browser.goto(&format!("{}/viewer/devfiles/Community/java-maven", server.url())).await;
    browser.find("#version-picker").await;
    browser.eval("window.viewerTestMark = 'still here'; return true", Vec::new()).await;
    browser.wait_until("the detail page subscribes", "return document.body.dataset.subscribed === 'true'").await;

    // One merge: a new stack, and a new version of java-maven.
    let commit = world.commit("add go-next and java-maven 2.1.0", |root| {
        add_stack(root, "go-next");
        let stack = root.join("stacks/java-maven");
        copy_tree(&stack.join("2.0.0"), &stack.join("2.1.0")).unwrap();
        edit(root, "stacks/java-maven/2.1.0/devfile.yaml", "version: \"2.0.0\"", "version: \"2.1.0\"");
        edit(root, "stacks/java-maven/stack.yaml", "  - version: 2.0.0", "  - version: 2.1.0\n  - version: 2.0.0");
    });
    let job = client.wait(&client.trigger(&commit, &["go-next"]).await.id).await;
    assert_eq!(job.status, schemas::updates::UpdateStatus::Live, "{job:#?}\n{}", server.log());

    // The detail page offers the new version.
    let notice = browser.find("#live-notice:not([hidden]) a").await;
    assert_eq!(notice.text().await.unwrap(), "2.1.0");
    assert_eq!(
        notice.attr("href").await.unwrap().unwrap(),
        "/viewer/devfiles/Community/java-maven?devfile-version=2.1.0"
    );
    assert_eq!(browser.eval("return window.viewerTestMark", Vec::new()).await, Value::from("still here"));
    assert_eq!(browser.count("#devfile-version option[value='2.1.0']").await, 1, "the picker lists it");
    browser.screenshot("detail-live-update").await;
    browser.client.switch_to_window(gallery).await.unwrap();

    browser
        .wait_until("the new stack appears", "return !!document.querySelector(\".card[data-name='go-next']\")")
        .await;
    assert_eq!(browser.count(".card").await, before + 1);
    assert_eq!(browser.eval("return window.viewerTestMark", Vec::new()).await, Value::from("still here"));
    let status = browser.find("#live-status").await.text().await.unwrap();
    assert!(status.contains("1 new"), "{status}");
    assert!(browser.current_url().await.ends_with("/viewer?types=stack"));
    browser.screenshot("gallery-live-update").await;
    browser.close().await;
}
