//! The gallery's query (the page's whole state, in its query string), the search, the facets
//! with their counts, and the order of the cards. Pure functions over index entries.
//!
//! Within a facet the selected values are alternatives (any of them), across facets and with
//! the search they all apply. A facet's counts are those of the entries matching the search and
//! every *other* facet, so that each count says how many cards ticking that value would add,
//! and a facet never counts itself down to its selected values only.

use std::cmp::Ordering;

use schemas::index::{DevfileType, IndexEntry};
use serde::Serialize;

/// The facets, in the order the page shows them.
pub const FACETS: [Facet; 6] =
    [Facet::Type, Facet::Tags, Facet::Provider, Facet::Language, Facet::Architecture, Facet::Deprecated];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    Type,
    Tags,
    Provider,
    Language,
    Architecture,
    Deprecated,
}

impl Facet {
    /// The query parameter (repeated for several values).
    pub fn param(self) -> &'static str {
        match self {
            Facet::Type => "types",
            Facet::Tags => "tags",
            Facet::Provider => "providers",
            Facet::Language => "languages",
            Facet::Architecture => "architectures",
            Facet::Deprecated => "deprecated",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Facet::Type => "Type",
            Facet::Tags => "Tags",
            Facet::Provider => "Provider",
            Facet::Language => "Language",
            Facet::Architecture => "Architecture",
            Facet::Deprecated => "Deprecated",
        }
    }

    /// The facet's values for one entry.
    fn values(self, entry: &IndexEntry) -> Vec<String> {
        let one = |s: &str| if s.trim().is_empty() { Vec::new() } else { vec![s.trim().to_string()] };
        match self {
            Facet::Type => vec![type_name(entry).to_string()],
            Facet::Tags => entry.tags.clone(),
            Facet::Provider => one(&entry.provider),
            Facet::Language => one(&entry.language),
            Facet::Architecture => entry.architectures.clone(),
            Facet::Deprecated => vec![if is_deprecated(entry) { "true" } else { "false" }.to_string()],
        }
    }

    /// Whether `entry` has one of the `selected` values (always, when none is selected). An
    /// entry that lists no architectures runs on all of them (SPEC §6 `arch`).
    fn matches(self, entry: &IndexEntry, selected: &[String]) -> bool {
        if selected.is_empty() || (self == Facet::Architecture && entry.architectures.is_empty()) {
            return true;
        }
        let values = self.values(entry);
        selected.iter().any(|s| values.iter().any(|v| v.eq_ignore_ascii_case(s)))
    }

    /// How a value reads on the page.
    fn label(self, value: &str) -> String {
        match (self, value) {
            (Facet::Type, "stack") => "Stack".to_string(),
            (Facet::Type, "sample") => "Sample".to_string(),
            (Facet::Deprecated, "true") => "Deprecated".to_string(),
            (Facet::Deprecated, "false") => "Not deprecated".to_string(),
            _ => value.to_string(),
        }
    }
}

/// How cards are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// By display name (then name), case-insensitively.
    #[default]
    Name,
    /// Most recently modified first; entries without a date last.
    Modified,
}

impl Sort {
    pub fn param(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Modified => "modified",
        }
    }
}

/// The gallery's state, as its query string holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub search: String,
    /// Selected values per facet, in [`FACETS`] order.
    pub selected: [Vec<String>; 6],
    pub sort: Sort,
}

impl Query {
    /// Reads a query string; unknown parameters and empty values are ignored.
    pub fn parse(query: &str) -> Query {
        let mut parsed = Query::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim();
            if key == "search" {
                parsed.search = collapse_whitespace(value);
            } else if key == "sort" {
                parsed.sort = if value == "modified" { Sort::Modified } else { Sort::Name };
            } else if let Some(i) = FACETS.iter().position(|f| f.param() == key) {
                if !value.is_empty() && !parsed.selected[i].iter().any(|v| v == value) {
                    parsed.selected[i].push(value.to_string());
                }
            }
        }
        parsed
    }

    pub fn selected(&self, facet: Facet) -> &[String] {
        &self.selected[FACETS.iter().position(|f| *f == facet).expect("every facet is in FACETS")]
    }

    /// The query string of this state (without `?`), in a canonical order.
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if !self.search.is_empty() {
            out.append_pair("search", &self.search);
        }
        for (facet, values) in FACETS.iter().zip(&self.selected) {
            for value in values {
                out.append_pair(facet.param(), value);
            }
        }
        if self.sort != Sort::Name {
            out.append_pair("sort", self.sort.param());
        }
        out.finish()
    }

    pub fn is_filtered(&self) -> bool {
        !self.search.is_empty() || self.selected.iter().any(|v| !v.is_empty())
    }

    /// Whether `entry` matches the search (name, display name, description or a tag contains
    /// it, ignoring case).
    fn matches_search(&self, entry: &IndexEntry) -> bool {
        if self.search.is_empty() {
            return true;
        }
        let needle = self.search.to_lowercase();
        let contains = |s: &str| collapse_whitespace(s).to_lowercase().contains(&needle);
        contains(&entry.name)
            || contains(&entry.display_name)
            || contains(&entry.description)
            || entry.tags.iter().any(|t| contains(t))
    }

    /// Whether `entry` matches the search and every facet but `except`.
    fn matches_except(&self, entry: &IndexEntry, except: Option<Facet>) -> bool {
        self.matches_search(entry)
            && FACETS
                .iter()
                .zip(&self.selected)
                .all(|(facet, selected)| Some(*facet) == except || facet.matches(entry, selected))
    }
}

/// One value of a facet, with its count and whether it is selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetValue {
    pub value: String,
    pub label: String,
    pub count: usize,
    pub selected: bool,
}

/// A facet as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetView {
    pub param: &'static str,
    pub title: &'static str,
    /// Values with a count, and selected ones (even at zero): by count, then label.
    pub values: Vec<FacetValue>,
}

/// What the gallery shows for a query: the matching entries in order, and the facets.
#[derive(Debug)]
pub struct Results<'a> {
    pub entries: Vec<&'a IndexEntry>,
    pub facets: Vec<FacetView>,
}

/// Searches, filters and orders `entries` as `query` says, and counts the facets.
pub fn search<'a>(entries: &'a [IndexEntry], query: &Query) -> Results<'a> {
    let mut matching: Vec<&IndexEntry> = entries.iter().filter(|e| query.matches_except(e, None)).collect();
    sort(&mut matching, query.sort);
    let facets = FACETS.iter().map(|&facet| facet_view(entries, query, facet)).collect();
    Results { entries: matching, facets }
}

fn facet_view(entries: &[IndexEntry], query: &Query, facet: Facet) -> FacetView {
    // Every value any entry has, so that a selected value keeps its place at zero.
    let mut values: Vec<FacetValue> = Vec::new();
    let mut add = |value: &str, count: usize| match values.iter_mut().find(|v| v.value.eq_ignore_ascii_case(value)) {
        Some(existing) => existing.count += count,
        None => values.push(FacetValue {
            value: value.to_string(),
            label: facet.label(value),
            count,
            selected: query.selected(facet).iter().any(|s| s.eq_ignore_ascii_case(value)),
        }),
    };
    let candidates: Vec<&IndexEntry> = entries.iter().filter(|e| query.matches_except(e, Some(facet))).collect();
    for entry in entries {
        for value in facet.values(entry) {
            add(&value, 0);
        }
    }
    for selected in query.selected(facet) {
        add(selected, 0);
    }
    for entry in &candidates {
        let mut own = facet.values(entry);
        own.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        for value in own {
            add(&value, 1);
        }
    }
    if facet == Facet::Architecture {
        // An entry without architectures runs on every one of them.
        let everywhere = candidates.iter().filter(|e| e.architectures.is_empty()).count();
        for value in &mut values {
            value.count += everywhere;
        }
    }
    values.retain(|v| v.count > 0 || v.selected);
    values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.to_lowercase().cmp(&b.label.to_lowercase())));
    FacetView { param: facet.param(), title: facet.title(), values }
}

fn sort(entries: &mut [&IndexEntry], order: Sort) {
    let by_name = |a: &&IndexEntry, b: &&IndexEntry| {
        display_name(a).to_lowercase().cmp(&display_name(b).to_lowercase()).then_with(|| a.name.cmp(&b.name))
    };
    match order {
        Sort::Name => entries.sort_by(by_name),
        Sort::Modified => entries.sort_by(|a, b| match (modified(a), modified(b)) {
            (Some(x), Some(y)) => y.cmp(&x).then_with(|| by_name(a, b)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => by_name(a, b),
        }),
    }
}

/// An entry's last modification as seconds since the epoch (dates may carry any offset).
pub fn modified(entry: &IndexEntry) -> Option<i64> {
    let text = entry.last_modified.as_deref()?;
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp())
}

/// The name a person reads: the display name, else the name.
pub fn display_name(entry: &IndexEntry) -> &str {
    if entry.display_name.trim().is_empty() { &entry.name } else { &entry.display_name }
}

/// `stack` or `sample`.
pub fn type_name(entry: &IndexEntry) -> &'static str {
    if entry.kind == Some(DevfileType::Sample) { "sample" } else { "stack" }
}

/// Deprecated entries carry the tag `Deprecated`, on the entry or its default version (SPEC §6).
pub fn is_deprecated(entry: &IndexEntry) -> bool {
    let tagged = |tags: &[String]| tags.iter().any(|t| t.eq_ignore_ascii_case("deprecated"));
    tagged(&entry.tags) || entry.default_version().is_some_and(|v| tagged(&v.tags))
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: DevfileType, tags: &[&str], provider: &str, archs: &[&str]) -> IndexEntry {
        IndexEntry {
            name: name.to_string(),
            display_name: name.to_uppercase(),
            description: format!("the {name} entry"),
            kind: Some(kind),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            provider: provider.to_string(),
            architectures: archs.iter().map(|a| a.to_string()).collect(),
            ..IndexEntry::default()
        }
    }

    fn entries() -> Vec<IndexEntry> {
        vec![
            entry("java-maven", DevfileType::Stack, &["Java", "Maven"], "Red Hat", &["amd64", "arm64"]),
            entry("java-gradle", DevfileType::Stack, &["Java", "Gradle", "Deprecated"], "Red Hat", &["amd64"]),
            entry("go", DevfileType::Stack, &["Go"], "", &[]),
            entry("java-sample", DevfileType::Sample, &["Java"], "Someone", &["s390x"]),
        ]
    }

    fn names<'a>(results: &'a Results<'a>) -> Vec<&'a str> {
        results.entries.iter().map(|e| e.name.as_str()).collect()
    }

    fn counts(results: &Results<'_>, param: &str) -> Vec<(String, usize, bool)> {
        let facet = results.facets.iter().find(|f| f.param == param).unwrap();
        facet.values.iter().map(|v| (v.value.clone(), v.count, v.selected)).collect()
    }

    #[test]
    fn the_spec_example_query_narrows_by_search_type_and_tag() {
        let all = entries();
        let query = Query::parse("search=java&types=stack&tags=Maven");
        assert_eq!(query.to_query_string(), "search=java&types=stack&tags=Maven");
        let results = search(&all, &query);
        assert_eq!(names(&results), ["java-maven"]);
        // Types are counted with the search and the tag, not with the type itself.
        assert_eq!(counts(&results, "types"), [("stack".to_string(), 1, true)]);
        // Tags are counted with the search and the type: the three Java stacks' tags.
        assert_eq!(
            counts(&results, "tags"),
            [
                ("Java".to_string(), 2, false),
                ("Deprecated".to_string(), 1, false),
                ("Gradle".to_string(), 1, false),
                ("Maven".to_string(), 1, true)
            ]
        );
    }

    #[test]
    fn values_of_one_facet_are_alternatives_and_architectures_default_to_all() {
        let all = entries();
        let results = search(&all, &Query::parse("tags=Go&tags=maven"));
        assert_eq!(names(&results), ["go", "java-maven"]);
        let results = search(&all, &Query::parse("architectures=arm64"));
        assert_eq!(names(&results), ["go", "java-maven"]);
        assert_eq!(
            counts(&results, "architectures"),
            [("amd64".to_string(), 3, false), ("arm64".to_string(), 2, true), ("s390x".to_string(), 2, false)]
        );
        let results = search(&all, &Query::parse("deprecated=true"));
        assert_eq!(names(&results), ["java-gradle"]);
        assert_eq!(counts(&results, "deprecated"), [("false".to_string(), 3, false), ("true".to_string(), 1, true)]);
    }

    #[test]
    fn search_looks_at_names_descriptions_and_tags_ignoring_case() {
        let all = entries();
        assert_eq!(names(&search(&all, &Query::parse("search=GRADLE"))), ["java-gradle"]);
        assert_eq!(names(&search(&all, &Query::parse("search=the+go+entry"))), ["go"]);
        assert_eq!(names(&search(&all, &Query::parse("search=%20%20"))).len(), 4);
        assert!(names(&search(&all, &Query::parse("search=nothing"))).is_empty());
    }

    #[test]
    fn sorting_by_last_modified_puts_the_newest_first_and_undated_last() {
        let mut all = entries();
        all[0].last_modified = Some("2024-01-01T00:00:00Z".to_string());
        all[2].last_modified = Some("2024-01-01T01:30:00+02:00".to_string());
        all[3].last_modified = Some("2025-06-01T00:00:00Z".to_string());
        let results = search(&all, &Query::parse("sort=modified"));
        assert_eq!(names(&results), ["java-sample", "java-maven", "go", "java-gradle"]);
        assert_eq!(names(&search(&all, &Query::default())), ["go", "java-gradle", "java-maven", "java-sample"]);
    }
}
