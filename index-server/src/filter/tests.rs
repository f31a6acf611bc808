//! The query parameters over a small hand-written index (`tests/fixtures/filter-index.json`):
//! three stacks (one with three versions, one deprecated with a folder name unlike its entry
//! name, one without a default version) and two samples (without and with versions).

use schemas::index::{IndexDocument, IndexEntry};

use super::{Family, IndexQuery, is_deprecated, to_v1};
use crate::snapshot::Listing;

fn fixture() -> Vec<IndexEntry> {
    let text = include_str!("../../tests/fixtures/filter-index.json");
    serde_json::from_str::<IndexDocument>(text).expect("the fixture is an index document").stacks
}

/// `name` or `name[versions]` of every entry the query keeps, in order.
fn run(query: &str, family: Family, listing: Listing) -> Vec<String> {
    let entries = match family {
        Family::V1 => fixture().iter().filter_map(to_v1).collect(),
        Family::V2 => fixture(),
    };
    let query = IndexQuery::parse(Some(query), family).unwrap_or_else(|e| panic!("{query}: {e}"));
    query
        .apply(&entries, family, listing)
        .iter()
        .map(|e| {
            if e.versions.is_empty() {
                e.name.clone()
            } else {
                let versions: Vec<&str> = e.versions.iter().map(|v| v.version.as_str()).collect();
                format!("{}[{}]", e.name, versions.join(","))
            }
        })
        .collect()
}

fn v2(query: &str) -> Vec<String> {
    run(query, Family::V2, Listing::All)
}

fn v1(query: &str) -> Vec<String> {
    run(query, Family::V1, Listing::All)
}

fn invalid(query: &str, family: Family) -> String {
    IndexQuery::parse(Some(query), family).expect_err(query).to_string()
}

const ALL_V2: [&str; 5] =
    ["alpha[2.1.0,2.0.0,1.0.0]", "beta[1.0.0]", "gamma[1.0.0]", "sample-one", "sample-two[1.0.0,2.0.0]"];

#[test]
fn no_parameter_keeps_everything_in_order() {
    assert_eq!(v2(""), ALL_V2);
    assert!(!IndexQuery::parse(None, Family::V2).unwrap().filters());
    assert!(!IndexQuery::parse(Some("unknown=1&also=x"), Family::V2).unwrap().filters());
    assert_eq!(v2("unknown=1"), ALL_V2);
}

#[test]
fn listing_selects_by_type() {
    assert_eq!(run("", Family::V2, Listing::Stacks), ["alpha[2.1.0,2.0.0,1.0.0]", "beta[1.0.0]", "gamma[1.0.0]"]);
    assert_eq!(run("", Family::V2, Listing::Samples), ["sample-one", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(run("language=java", Family::V2, Listing::Samples), ["sample-one", "sample-two[1.0.0,2.0.0]"]);
}

#[test]
fn name_is_a_case_insensitive_trimmed_substring() {
    assert_eq!(v2("name=alp"), ["alpha[2.1.0,2.0.0,1.0.0]"]);
    assert_eq!(v2("name=%20%20ALPHA%20"), ["alpha[2.1.0,2.0.0,1.0.0]"]);
    assert_eq!(v2("name=sample"), ["sample-one", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("name=zzz"), Vec::<String>::new());
}

#[test]
fn whitespace_runs_collapse_on_both_sides() {
    // The fixture's displayName is "Alpha  Runtime" (two spaces), its description "The   Alpha stack".
    assert_eq!(v2("displayName=alpha%20runtime"), ["alpha[2.1.0,2.0.0,1.0.0]"]);
    assert_eq!(v2("displayName=alpha+++runtime"), ["alpha[2.1.0,2.0.0,1.0.0]"]);
    assert_eq!(v2("description=the%20alpha"), ["alpha[2.1.0,2.0.0,1.0.0]"]);
}

#[test]
fn description_matches_the_entry_or_some_versions() {
    // Only version 2.1.0 says Quarkus; sample-two says it at entry level, so it keeps all.
    assert_eq!(v2("description=quarkus"), ["alpha[2.1.0]", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("description=second"), ["sample-two[2.0.0]"]);
    // v1 entries have no versions: only the entry's description counts.
    assert_eq!(v1("description=quarkus"), ["sample-two"]);
}

#[test]
fn attribute_names() {
    assert_eq!(v2("attributeNames=alpha.attr"), ["alpha[2.1.0,2.0.0,1.0.0]"]);
    assert_eq!(v2("attributeNames=nope"), Vec::<String>::new());
}

#[test]
fn tags_match_entry_or_versions_and_every_value_must_match() {
    assert_eq!(v2("tags=quarkus"), ["alpha[2.1.0]", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("tags=java&tags=quarkus"), ["alpha[2.1.0]", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("tags=java&tags=python"), Vec::<String>::new());
    assert_eq!(v2("tags=node"), ["sample-one"]);
    // v1 takes the default version's tags: alpha's are [Java, Maven], sample-two's [Quarkus].
    assert_eq!(v1("tags=quarkus"), ["sample-two"]);
    assert_eq!(v1("tags=maven"), ["alpha"]);
}

#[test]
fn arch_empty_means_all_and_values_are_checked() {
    assert_eq!(v2("arch=arm64"), ["alpha[2.1.0,2.0.0,1.0.0]", "beta[1.0.0]"]);
    assert_eq!(v2("arch=s390x"), ["beta[1.0.0]", "gamma[1.0.0]"]);
    assert_eq!(v2("arch=amd64&arch=ppc64le"), ["beta[1.0.0]", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("arch=AMD64&arch=arm64"), ["alpha[2.1.0,2.0.0,1.0.0]", "beta[1.0.0]"]);
    assert_eq!(v1("arch=arm64"), ["alpha", "beta"]);
    // sample-two's versions declare none: they have the entry's, which lack arm64.
    assert_eq!(run("arch=arm64", Family::V2, Listing::Samples), Vec::<String>::new());
    assert_eq!(invalid("arch=x86", Family::V2), "arch x86 is not valid, should be one of amd64, arm64, ppc64le, s390x");
    assert!(invalid("arch=amd", Family::V1).starts_with("arch amd is not valid"));
}

#[test]
fn icon_uri_and_icon() {
    assert_eq!(v2("iconUri=beta.png"), ["beta[1.0.0]"]);
    let query = IndexQuery::parse(Some("icon=base64"), Family::V2).unwrap();
    assert!(query.icon_base64);
    assert_eq!(invalid("icon=png", Family::V1), "icon png is not valid, the only icon type is base64");
}

#[test]
fn entry_level_strings() {
    assert_eq!(v2("projectType=maven"), ["alpha[2.1.0,2.0.0,1.0.0]"]);
    // A substring: "java" is in "JavaScript" too.
    assert_eq!(v2("language=java"), ["alpha[2.1.0,2.0.0,1.0.0]", "sample-one", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("language=javascript"), ["sample-one"]);
    assert_eq!(v2("provider=example"), ["beta[1.0.0]", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("supportUrl=beta.example"), ["beta[1.0.0]"]);
    assert_eq!(v1("provider=red%20hat"), ["alpha", "sample-one"]);
}

#[test]
fn resources_and_starter_projects() {
    assert_eq!(v2("resources=archive.tar"), ["alpha[2.1.0]"]);
    assert_eq!(v1("resources=archive.tar"), Vec::<String>::new());
    assert_eq!(v2("starterProjects=maven-starter"), ["alpha[2.0.0]"]);
    assert_eq!(v1("starterProjects=maven"), ["alpha"]);
    assert_eq!(v2("starterProjects=starter"), ["alpha[2.1.0,2.0.0]", "beta[1.0.0]"]);
}

#[test]
fn links_and_link_names() {
    assert_eq!(v2("linkNames=self"), ["alpha[2.1.0,2.0.0,1.0.0]", "beta[1.0.0]", "gamma[1.0.0]"]);
    assert_eq!(v2("linkNames=other"), Vec::<String>::new());
    // `links` matches a link's name or its value.
    assert_eq!(v2("links=beta-folder"), ["beta[1.0.0]"]);
    assert_eq!(v2("links=alpha:2.0.0"), ["alpha[2.0.0]"]);
    assert_eq!(v1("links=self"), ["alpha", "beta"]);
}

#[test]
fn git_fields_match_the_entry_or_versions() {
    assert_eq!(v2("gitRemoteNames=upstream"), ["sample-two[2.0.0]"]);
    assert_eq!(v2("gitRemoteNames=origin"), ["sample-one", "sample-two[1.0.0]"]);
    assert_eq!(v2("gitRemotes=github.com/example/one"), ["sample-one"]);
    assert_eq!(v2("gitRemotes=example"), ["sample-one", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("gitUrl=one.git"), ["sample-one"]);
    assert_eq!(v2("gitRemoteName=origin"), ["sample-one"]);
    assert_eq!(v2("gitSubDir=app"), ["sample-two[1.0.0]"]);
    assert_eq!(v2("gitRevision=v1"), ["sample-two[1.0.0]"]);
    assert_eq!(v2("gitRevision=main"), ["sample-one", "sample-two[2.0.0]"]);
    // Entries without git simply do not match; v1 samples carry their default version's git.
    assert_eq!(v1("gitRemoteNames=upstream"), ["sample-two"]);
    assert_eq!(v1("gitSubDir=app"), Vec::<String>::new());
}

#[test]
fn deprecated() {
    assert_eq!(v2("deprecated=true"), ["beta[1.0.0]"]);
    assert_eq!(
        v2("deprecated=false"),
        ["alpha[2.1.0,2.0.0,1.0.0]", "gamma[1.0.0]", "sample-one", "sample-two[1.0.0,2.0.0]"]
    );
    assert_eq!(v1("deprecated=T"), ["beta"]);
    assert_eq!(invalid("deprecated=yes", Family::V1), "deprecated yes is not valid, should be true or false");
}

#[test]
fn deprecated_by_default_version_tags() {
    let mut entry = fixture().remove(1);
    entry.tags.clear();
    assert!(is_deprecated(&entry));
    entry.versions[0].tags.clear();
    assert!(!is_deprecated(&entry));
}

#[test]
fn booleans_accept_the_usual_spellings() {
    for yes in ["true", "TRUE", "True", "1", "t", "T"] {
        assert_eq!(v2(&format!("deprecated={yes}")), ["beta[1.0.0]"], "{yes}");
    }
    for no in ["false", "FALSE", "0", "f", "F"] {
        assert_eq!(v2(&format!("deprecated={no}")).len(), 4, "{no}");
    }
    assert!(invalid("default=2", Family::V2).starts_with("default 2 is not valid"));
}

#[test]
fn default_keeps_the_matching_versions() {
    assert_eq!(v2("default=true"), ["alpha[2.0.0]", "beta[1.0.0]", "sample-two[2.0.0]"]);
    assert_eq!(v2("default=false"), ["alpha[2.1.0,1.0.0]", "gamma[1.0.0]", "sample-two[1.0.0]"]);
    // v2 only: unknown (ignored) on v1, even with a bad value.
    assert_eq!(v1("default=maybe"), ["alpha", "beta", "sample-one", "sample-two"]);
}

#[test]
fn command_groups() {
    assert_eq!(v2("commandGroups=deploy"), ["alpha[2.1.0]"]);
    assert_eq!(v2("commandGroups=build&commandGroups=debug"), ["alpha[2.0.0]"]);
    assert_eq!(v2("commandGroups=test"), ["gamma[1.0.0]"]);
    assert_eq!(v2("commandGroups=RUN").len(), 3);
    assert_eq!(
        invalid("commandGroups=compile", Family::V2),
        "commandGroups compile is not valid, should be one of build, debug, deploy, run, test"
    );
}

#[test]
fn deployment_scopes() {
    assert_eq!(v2("deploymentScopes=innerloop"), ["sample-one"]);
    assert_eq!(v2("deploymentScopes=outerloop"), ["sample-two[2.0.0]"]);
    assert_eq!(
        invalid("deploymentScopes=inner", Family::V2),
        "deploymentScopes inner is not valid, should be one of innerloop, outerloop"
    );
}

#[test]
fn version_ranges_are_inclusive() {
    assert_eq!(v2("minVersion=2.0"), ["alpha[2.1.0,2.0.0]", "sample-two[2.0.0]"]);
    assert_eq!(v2("minVersion=2.0.1"), ["alpha[2.1.0]"]);
    assert_eq!(v2("maxVersion=1.0.0"), ["alpha[1.0.0]", "beta[1.0.0]", "gamma[1.0.0]", "sample-two[1.0.0]"]);
    // `x.y` compares major and minor: 2.0 keeps 2.0.0 (and would keep 2.0.9), not 2.1.0.
    assert_eq!(v2("maxVersion=2.0"), ["alpha[2.0.0,1.0.0]", "beta[1.0.0]", "gamma[1.0.0]", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("minVersion=2.0&maxVersion=2.0"), ["alpha[2.0.0]", "sample-two[2.0.0]"]);
    // Any major, not just one digit.
    assert_eq!(v2("minVersion=10.0"), Vec::<String>::new());
    assert_eq!(v2("maxVersion=10.0").len(), 4);
    for bad in ["2", "2.x", "1.2.3.4", "v1.0", "1..2", "-1.0"] {
        assert_eq!(
            invalid(&format!("minVersion={bad}"), Family::V2),
            format!("minVersion {bad} is not valid, should be a version like 1.2 or 1.2.3")
        );
    }
}

#[test]
fn schema_version_ranges() {
    assert_eq!(v2("minSchemaVersion=2.2"), ["alpha[2.1.0,2.0.0]", "gamma[1.0.0]", "sample-two[2.0.0]"]);
    assert_eq!(v2("maxSchemaVersion=2.2"), ["alpha[2.1.0,2.0.0,1.0.0]", "beta[1.0.0]", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("maxSchemaVersion=2.2.0"), ["alpha[2.0.0,1.0.0]", "beta[1.0.0]", "sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("minSchemaVersion=2.1&maxSchemaVersion=2.1"), ["beta[1.0.0]"]);
    assert_eq!(
        invalid("maxSchemaVersion=two", Family::V2),
        "maxSchemaVersion two is not valid, should be a schema version like 2.2 or 2.2.0"
    );
}

#[test]
fn last_modified_by_utc_day() {
    // alpha 2.1.0 is 2024-03-05T23:30-02:00 = 2024-03-06 UTC; gamma is 2024-03-06T00:30+02:00 =
    // 2024-03-05 UTC. sample-one (no versions) has its entry time, 2024-01-15.
    assert_eq!(v2("minLastModified=2024-03-06"), ["alpha[2.1.0]"]);
    assert_eq!(v2("maxLastModified=2024-03-05"), ["alpha[2.0.0,1.0.0]", "gamma[1.0.0]", "sample-one"]);
    assert_eq!(v2("minLastModified=2024-01-01&maxLastModified=2024-01-31"), ["sample-one"]);
    assert_eq!(v2("minLastModified=2023-12-31&maxLastModified=2023-12-31"), ["alpha[1.0.0]"]);
    for bad in ["2024-02-30", "2024-3-1", "2024/03/01", "yesterday", "2024-03-01T00:00:00Z"] {
        assert_eq!(
            invalid(&format!("minLastModified={bad}"), Family::V2),
            format!("minLastModified {bad} is not valid, should be a date like 2024-01-31 (YYYY-MM-DD)")
        );
    }
}

#[test]
fn empty_values_are_invalid() {
    assert_eq!(invalid("name=", Family::V2), "name  is not valid, a value is required");
    assert_eq!(invalid("tags=java&tags=%20", Family::V1), "tags  is not valid, a value is required");
    assert_eq!(invalid("minVersion=", Family::V2), "minVersion  is not valid, a value is required");
    assert_eq!(invalid("icon=", Family::V2), "icon  is not valid, a value is required");
}

#[test]
fn parameters_combine_as_a_true_intersection() {
    assert_eq!(v2("tags=java&arch=arm64"), ["alpha[2.1.0,2.0.0,1.0.0]"]);
    assert_eq!(v2("tags=java&minVersion=2.0"), ["alpha[2.1.0,2.0.0]", "sample-two[2.0.0]"]);
    assert_eq!(v2("tags=quarkus&default=true"), ["sample-two[2.0.0]"]);
    // Quarkus is only in 2.1.0 and maven-starter only in 2.0.0: no version has both.
    assert_eq!(v2("tags=quarkus&starterProjects=maven-starter"), Vec::<String>::new());
    assert_eq!(v2("language=java&provider=example"), ["sample-two[1.0.0,2.0.0]"]);
    assert_eq!(v2("language=java&provider=red"), ["alpha[2.1.0,2.0.0,1.0.0]", "sample-one"]);
    assert_eq!(v2("language=java&provider=nobody"), Vec::<String>::new());
}

#[test]
fn the_first_invalid_parameter_is_reported() {
    assert!(invalid("name=a&arch=bad&minVersion=bad", Family::V2).starts_with("arch bad"));
    assert!(invalid("minVersion=bad&arch=bad", Family::V2).starts_with("minVersion bad"));
}

#[test]
fn v2_only_parameters_are_ignored_on_v1() {
    let query = "minVersion=x&maxSchemaVersion=y&commandGroups=z&deploymentScopes=w&minLastModified=v";
    assert_eq!(v1(query), ["alpha", "beta", "sample-one", "sample-two"]);
}

#[test]
fn v1_conversion_lifts_the_default_version() {
    let entries: Vec<IndexEntry> = fixture().iter().filter_map(to_v1).collect();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    // gamma has versions but no default: v1 leaves it out.
    assert_eq!(names, ["alpha", "beta", "sample-one", "sample-two"]);
    let alpha = &entries[0];
    assert_eq!(alpha.version, "2.0.0");
    assert_eq!(alpha.links["self"], "devfile-catalog/alpha:2.0.0");
    assert_eq!(alpha.resources, ["devfile.yaml"]);
    assert_eq!(alpha.starter_projects, ["maven-starter"]);
    assert_eq!(alpha.tags, ["Java", "Maven"]);
    assert_eq!(alpha.architectures, ["amd64", "arm64"]);
    assert!(alpha.versions.is_empty());
    // beta's default version declares no architectures: the entry's (none) stay.
    assert!(entries[1].architectures.is_empty());
    // A sample without versions is unchanged; one with versions takes its default's git and tags.
    assert_eq!(entries[2], fixture()[3]);
    let two = &entries[3];
    assert_eq!(two.tags, ["Quarkus"]);
    assert_eq!(two.git.as_ref().unwrap().remotes["upstream"], "https://gitlab.example/two.git");
    assert!(two.version.is_empty() && two.links.is_empty() && two.versions.is_empty());
    let json = serde_json::to_value(alpha).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "name",
            "version",
            "attributes",
            "displayName",
            "description",
            "type",
            "tags",
            "architectures",
            "icon",
            "projectType",
            "language",
            "links",
            "resources",
            "starterProjects",
            "provider",
            "supportUrl",
            "lastModified"
        ]
    );
}
