//! The query parameters of the index routes (SPEC §6): parsing and validation, the matching
//! rules, and the v1 conversion.
//!
//! Filtering works on the parsed entries of a snapshot and clones only what it keeps; it never
//! reads a file or parses JSON. Entries keep their index order.

use chrono::NaiveDate;
use schemas::index::{COMMAND_GROUP_KINDS, DEPLOYMENT_SCOPES, DevfileType, IndexEntry, Version};

use crate::snapshot::Listing;

/// The two families of index routes: `/index*` (v1 entries, no `versions`) and `/v2index*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V1 = 0,
    V2 = 1,
}

/// The architectures the devfile schema knows; `arch` accepts only these.
pub const ARCHITECTURES: [&str; 4] = ["amd64", "arm64", "ppc64le", "s390x"];

/// A query parameter with a value we cannot use: the 400 body says
/// `<parameter> <value> is not valid, <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter} {value} is not valid, {reason}")]
pub struct InvalidParameter {
    pub parameter: String,
    pub value: String,
    pub reason: &'static str,
}

impl InvalidParameter {
    fn new(parameter: &str, value: &str, reason: &'static str) -> InvalidParameter {
        InvalidParameter { parameter: parameter.to_string(), value: value.to_string(), reason }
    }
}

/// A parameter matched against a list of strings taken from an entry and, for some, from each
/// version. A single-valued field (`name`, `gitUrl`...) is a list of one; an empty field is an
/// empty list, which never matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    DisplayName,
    Description,
    AttributeNames,
    Tags,
    Arch,
    IconUri,
    ProjectType,
    Language,
    Resources,
    StarterProjects,
    LinkNames,
    Links,
    GitRemoteNames,
    GitRemotes,
    GitUrl,
    GitRemoteName,
    GitSubDir,
    GitRevision,
    Provider,
    SupportUrl,
    CommandGroups,
    DeploymentScopes,
}

impl Field {
    /// The field a parameter name selects in `family`; v2-only parameters are unknown in v1.
    fn from_parameter(name: &str, family: Family) -> Option<Field> {
        Some(match name {
            "name" => Field::Name,
            "displayName" => Field::DisplayName,
            "description" => Field::Description,
            "attributeNames" => Field::AttributeNames,
            "tags" => Field::Tags,
            "arch" => Field::Arch,
            "iconUri" => Field::IconUri,
            "projectType" => Field::ProjectType,
            "language" => Field::Language,
            "resources" => Field::Resources,
            "starterProjects" => Field::StarterProjects,
            "linkNames" => Field::LinkNames,
            "links" => Field::Links,
            "gitRemoteNames" => Field::GitRemoteNames,
            "gitRemotes" => Field::GitRemotes,
            "gitUrl" => Field::GitUrl,
            "gitRemoteName" => Field::GitRemoteName,
            "gitSubDir" => Field::GitSubDir,
            "gitRevision" => Field::GitRevision,
            "provider" => Field::Provider,
            "supportUrl" => Field::SupportUrl,
            "commandGroups" if family == Family::V2 => Field::CommandGroups,
            "deploymentScopes" if family == Family::V2 => Field::DeploymentScopes,
            _ => return None,
        })
    }

    /// The values a requested value may take, when the parameter is an enumeration. They are
    /// compared whole (case-insensitively), not as substrings.
    fn allowed(self) -> Option<(&'static [&'static str], &'static str)> {
        match self {
            Field::Arch => Some((&ARCHITECTURES, "should be one of amd64, arm64, ppc64le, s390x")),
            Field::CommandGroups => Some((&COMMAND_GROUP_KINDS, "should be one of build, debug, deploy, run, test")),
            Field::DeploymentScopes => Some((&DEPLOYMENT_SCOPES, "should be one of innerloop, outerloop")),
            _ => None,
        }
    }

    fn of_entry(self, e: &IndexEntry) -> Vec<&str> {
        let git = e.git.as_ref();
        match self {
            Field::Name => one(&e.name),
            Field::DisplayName => one(&e.display_name),
            Field::Description => one(&e.description),
            Field::AttributeNames => e.attributes.keys().map(String::as_str).collect(),
            Field::Tags => strs(&e.tags),
            Field::Arch => strs(&e.architectures),
            Field::IconUri => one(&e.icon),
            Field::ProjectType => one(&e.project_type),
            Field::Language => one(&e.language),
            Field::Resources => strs(&e.resources),
            Field::StarterProjects => strs(&e.starter_projects),
            Field::LinkNames => e.links.keys().map(String::as_str).collect(),
            Field::Links => e.links.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]).collect(),
            Field::GitRemoteNames => git.map(|g| g.remotes.keys().map(String::as_str).collect()).unwrap_or_default(),
            Field::GitRemotes => git.map(|g| g.remotes.values().map(String::as_str).collect()).unwrap_or_default(),
            Field::GitUrl => git.map(|g| one(&g.url)).unwrap_or_default(),
            Field::GitRemoteName => git.map(|g| one(&g.remote_name)).unwrap_or_default(),
            Field::GitSubDir => git.map(|g| one(&g.sub_dir)).unwrap_or_default(),
            Field::GitRevision => git.map(|g| one(&g.revision)).unwrap_or_default(),
            Field::Provider => one(&e.provider),
            Field::SupportUrl => one(&e.support_url),
            Field::CommandGroups => set_keys(&e.command_groups),
            Field::DeploymentScopes => set_keys(&e.deployment_scopes),
        }
    }

    /// Whether versions carry the field too (so that v2 can keep an entry for some versions).
    fn per_version(self) -> bool {
        !matches!(
            self,
            Field::Name
                | Field::DisplayName
                | Field::AttributeNames
                | Field::ProjectType
                | Field::Language
                | Field::Provider
                | Field::SupportUrl
        )
    }

    /// `None` when the field does not exist per version.
    fn of_version(self, v: &Version) -> Option<Vec<&str>> {
        let git = v.git.as_ref();
        Some(match self {
            Field::Description => one(&v.description),
            Field::Tags => strs(&v.tags),
            Field::Arch => strs(&v.architectures),
            Field::IconUri => one(&v.icon),
            Field::Resources => strs(&v.resources),
            Field::StarterProjects => strs(&v.starter_projects),
            Field::LinkNames => v.links.keys().map(String::as_str).collect(),
            Field::Links => v.links.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]).collect(),
            Field::GitRemoteNames => git.map(|g| g.remotes.keys().map(String::as_str).collect()).unwrap_or_default(),
            Field::GitRemotes => git.map(|g| g.remotes.values().map(String::as_str).collect()).unwrap_or_default(),
            Field::GitUrl => git.map(|g| one(&g.url)).unwrap_or_default(),
            Field::GitRemoteName => git.map(|g| one(&g.remote_name)).unwrap_or_default(),
            Field::GitSubDir => git.map(|g| one(&g.sub_dir)).unwrap_or_default(),
            Field::GitRevision => git.map(|g| one(&g.revision)).unwrap_or_default(),
            Field::CommandGroups => set_keys(&v.command_groups),
            Field::DeploymentScopes => set_keys(&v.deployment_scopes),
            Field::Name
            | Field::DisplayName
            | Field::AttributeNames
            | Field::ProjectType
            | Field::Language
            | Field::Provider
            | Field::SupportUrl => return None,
        })
    }

    /// Whether every wanted value matches some element of `values`.
    fn matches(self, values: &[&str], wanted: &[String]) -> bool {
        if values.is_empty() {
            // An entry or version that declares no architecture runs on all of them.
            return self == Field::Arch;
        }
        let values: Vec<String> = values.iter().map(|v| normalize(v)).collect();
        if self.allowed().is_some() {
            wanted.iter().all(|w| values.iter().any(|v| v == w))
        } else {
            wanted.iter().all(|w| values.iter().any(|v| v.contains(w.as_str())))
        }
    }
}

fn one(s: &str) -> Vec<&str> {
    if s.is_empty() { Vec::new() } else { vec![s] }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn set_keys(map: &std::collections::BTreeMap<String, bool>) -> Vec<&str> {
    map.iter().filter(|(_, set)| **set).map(|(k, _)| k.as_str()).collect()
}

/// Lowercase, trimmed, whitespace runs collapsed to one space: the form both sides of a string
/// match take.
fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// A version as the ranges compare it: `major.minor.patch`, pre-release and build ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Triple(u64, u64, u64);

impl Triple {
    /// `x.y.z`, or `x.y` (patch 0), with an optional `-pre`/`+build` suffix.
    fn parse_lenient(s: &str) -> Option<Triple> {
        let core = s.trim().split(['-', '+']).next()?;
        let parts: Vec<u64> = core.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        match parts[..] {
            [major, minor] => Some(Triple(major, minor, 0)),
            [major, minor, patch] => Some(Triple(major, minor, patch)),
            _ => None,
        }
    }
}

/// One end of a version range as requested: `x.y` compares major and minor only, so
/// `maxSchemaVersion=2.2` keeps schema 2.2.2; `x.y.z` compares all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bound {
    at: Triple,
    with_patch: bool,
}

impl Bound {
    fn parse(parameter: &str, value: &str, reason: &'static str) -> Result<Bound, InvalidParameter> {
        let invalid = || InvalidParameter::new(parameter, value, reason);
        let parts: Vec<&str> = value.split('.').collect();
        if !(2..=3).contains(&parts.len())
            || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid());
        }
        let n: Vec<u64> = parts.iter().map(|p| p.parse()).collect::<Result<_, _>>().map_err(|_| invalid())?;
        Ok(Bound { at: Triple(n[0], n[1], n.get(2).copied().unwrap_or(0)), with_patch: n.len() == 3 })
    }

    fn key(self, v: Triple) -> (Triple, Triple) {
        if self.with_patch { (v, self.at) } else { (Triple(v.0, v.1, 0), Triple(self.at.0, self.at.1, 0)) }
    }
}

/// An inclusive range of versions; an open end is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionRange {
    min: Option<Bound>,
    max: Option<Bound>,
}

impl VersionRange {
    pub fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    /// Whether `version` lies in the range; a version that is not `x.y[.z]` lies in no range
    /// but the open one.
    pub fn contains(&self, version: &str) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(v) = Triple::parse_lenient(version) else { return false };
        self.min.is_none_or(|min| {
            let (v, b) = min.key(v);
            v >= b
        }) && self.max.is_none_or(|max| {
            let (v, b) = max.key(v);
            v <= b
        })
    }

    /// `minSchemaVersion` and `maxSchemaVersion` of a query: what `/devfiles/{name}/latest` honours.
    pub fn schema_versions(query: Option<&str>) -> Result<VersionRange, InvalidParameter> {
        let mut range = VersionRange::default();
        for (key, value) in pairs(query) {
            match key.as_str() {
                "minSchemaVersion" => range.min = Some(schema_bound(&key, &value)?),
                "maxSchemaVersion" => range.max = Some(schema_bound(&key, &value)?),
                _ => {}
            }
        }
        Ok(range)
    }
}

const VERSION_REASON: &str = "should be a version like 1.2 or 1.2.3";
const SCHEMA_VERSION_REASON: &str = "should be a schema version like 2.2 or 2.2.0";
const DATE_REASON: &str = "should be a date like 2024-01-31 (YYYY-MM-DD)";
const BOOL_REASON: &str = "should be true or false";
const EMPTY_REASON: &str = "a value is required";

fn schema_bound(key: &str, value: &str) -> Result<Bound, InvalidParameter> {
    non_empty(key, value)?;
    Bound::parse(key, value, SCHEMA_VERSION_REASON)
}

fn non_empty(key: &str, value: &str) -> Result<(), InvalidParameter> {
    if value.is_empty() { Err(InvalidParameter::new(key, value, EMPTY_REASON)) } else { Ok(()) }
}

/// `true/false/1/0/t/f`, any case.
fn parse_bool(key: &str, value: &str) -> Result<bool, InvalidParameter> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "t" => Ok(true),
        "false" | "0" | "f" => Ok(false),
        _ => Err(InvalidParameter::new(key, value, BOOL_REASON)),
    }
}

fn parse_date(key: &str, value: &str) -> Result<NaiveDate, InvalidParameter> {
    let shaped = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    shaped
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| InvalidParameter::new(key, value, DATE_REASON))
}

/// The decoded `key=value` pairs of a query string, values trimmed.
fn pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.unwrap_or("").as_bytes()).map(|(k, v)| (k.into_owned(), v.trim().to_string()))
}

/// A validated query of an index route.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IndexQuery {
    /// Per field, every value requested for it (normalized), in the order first requested.
    fields: Vec<(Field, Vec<String>)>,
    deprecated: Option<bool>,
    default: Option<bool>,
    versions: VersionRange,
    schema_versions: VersionRange,
    min_modified: Option<NaiveDate>,
    max_modified: Option<NaiveDate>,
    /// `icon=base64`: serve top-level icons as `data:` URIs.
    pub icon_base64: bool,
}

/// What one parameter decides about one entry.
enum Verdict {
    /// Matched at entry level: every version stays (as far as this parameter goes).
    Entry,
    /// Matched by some versions only: these stay (`true`), the others go.
    Versions(Vec<bool>),
    Reject,
}

impl IndexQuery {
    /// Parses the query string of a `family` route. Unknown parameters (including v2-only ones
    /// on v1 routes) are ignored; the first invalid value is the error.
    pub fn parse(query: Option<&str>, family: Family) -> Result<IndexQuery, InvalidParameter> {
        let mut q = IndexQuery::default();
        for (key, value) in pairs(query) {
            let key = key.as_str();
            if let Some(field) = Field::from_parameter(key, family) {
                non_empty(key, &value)?;
                let wanted = normalize(&value);
                if let Some((allowed, reason)) = field.allowed() {
                    if !allowed.contains(&wanted.as_str()) {
                        return Err(InvalidParameter::new(key, &value, reason));
                    }
                }
                match q.fields.iter_mut().find(|(f, _)| *f == field) {
                    Some((_, values)) => values.push(wanted),
                    None => q.fields.push((field, vec![wanted])),
                }
                continue;
            }
            match (key, family) {
                ("icon", _) => {
                    non_empty(key, &value)?;
                    if value != "base64" {
                        return Err(InvalidParameter::new(key, &value, "the only icon type is base64"));
                    }
                    q.icon_base64 = true;
                }
                ("deprecated", _) => q.deprecated = Some(parse_bool(key, &value)?),
                ("default", Family::V2) => q.default = Some(parse_bool(key, &value)?),
                ("minVersion", Family::V2) => {
                    non_empty(key, &value)?;
                    q.versions.min = Some(Bound::parse(key, &value, VERSION_REASON)?);
                }
                ("maxVersion", Family::V2) => {
                    non_empty(key, &value)?;
                    q.versions.max = Some(Bound::parse(key, &value, VERSION_REASON)?);
                }
                ("minSchemaVersion", Family::V2) => q.schema_versions.min = Some(schema_bound(key, &value)?),
                ("maxSchemaVersion", Family::V2) => q.schema_versions.max = Some(schema_bound(key, &value)?),
                ("minLastModified", Family::V2) => q.min_modified = Some(parse_date(key, &value)?),
                ("maxLastModified", Family::V2) => q.max_modified = Some(parse_date(key, &value)?),
                _ => {}
            }
        }
        Ok(q)
    }

    /// Whether the query selects anything: when it does not, the unfiltered body is the answer.
    pub fn filters(&self) -> bool {
        !self.fields.is_empty()
            || self.deprecated.is_some()
            || self.default.is_some()
            || !self.versions.is_open()
            || !self.schema_versions.is_open()
            || self.min_modified.is_some()
            || self.max_modified.is_some()
    }

    /// The entries of `listing` that match, in index order, each with only its matching versions.
    pub fn apply(&self, entries: &[IndexEntry], family: Family, listing: Listing) -> Vec<IndexEntry> {
        entries.iter().filter(|e| listing.includes(e)).filter_map(|e| self.filter_entry(e, family)).collect()
    }

    fn filter_entry(&self, entry: &IndexEntry, family: Family) -> Option<IndexEntry> {
        let mut keep = vec![true; entry.versions.len()];
        for verdict in self.verdicts(entry, family) {
            match verdict {
                Verdict::Entry => {}
                Verdict::Versions(mask) => keep.iter_mut().zip(mask).for_each(|(k, m)| *k &= m),
                Verdict::Reject => return None,
            }
        }
        // A true intersection: parameters that each keep some versions, but no common one,
        // leave nothing of the entry.
        if !entry.versions.is_empty() && !keep.contains(&true) {
            return None;
        }
        let mut kept = IndexEntry { versions: Vec::new(), ..entry.clone() };
        kept.versions = entry.versions.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| v.clone()).collect();
        Some(kept)
    }

    fn verdicts<'a>(&'a self, entry: &'a IndexEntry, family: Family) -> impl Iterator<Item = Verdict> + 'a {
        let fields = self.fields.iter().map(move |(field, wanted)| {
            if field.matches(&field.of_entry(entry), wanted) {
                return Verdict::Entry;
            }
            if family == Family::V2 && field.per_version() {
                let entry_values = field.of_entry(entry);
                return by_versions(entry, |v| {
                    field.of_version(v).is_some_and(|values| {
                        // A version that declares no architecture has its entry's.
                        let values = if *field == Field::Arch && values.is_empty() { &entry_values } else { &values };
                        field.matches(values, wanted)
                    })
                });
            }
            Verdict::Reject
        });
        let deprecated =
            self.deprecated.map(|want| if is_deprecated(entry) == want { Verdict::Entry } else { Verdict::Reject });
        let default = self.default.map(|want| by_versions(entry, |v| v.default == want));
        let versions = (!self.versions.is_open()).then(|| by_versions(entry, |v| self.versions.contains(&v.version)));
        let schema_versions = (!self.schema_versions.is_open())
            .then(|| by_versions(entry, |v| self.schema_versions.contains(&v.schema_version)));
        let modified = (self.min_modified.is_some() || self.max_modified.is_some()).then(|| {
            let in_range = |time: Option<&String>| {
                time.and_then(|t| utc_day(t)).is_some_and(|day| {
                    self.min_modified.is_none_or(|m| day >= m) && self.max_modified.is_none_or(|m| day <= m)
                })
            };
            if entry.versions.is_empty() {
                // A sample without versions only has the entry's time.
                if in_range(entry.last_modified.as_ref()) { Verdict::Entry } else { Verdict::Reject }
            } else {
                by_versions(entry, |v| in_range(v.last_modified.as_ref()))
            }
        });
        fields.chain([deprecated, default, versions, schema_versions, modified].into_iter().flatten())
    }
}

/// Keeps the versions for which `pred` holds; rejects the entry when none does (or it has none).
fn by_versions(entry: &IndexEntry, pred: impl Fn(&Version) -> bool) -> Verdict {
    let mask: Vec<bool> = entry.versions.iter().map(pred).collect();
    if mask.contains(&true) { Verdict::Versions(mask) } else { Verdict::Reject }
}

/// The UTC day of an RFC 3339 time.
fn utc_day(time: &str) -> Option<NaiveDate> {
    chrono::DateTime::parse_from_rfc3339(time).ok().map(|t| t.with_timezone(&chrono::Utc).date_naive())
}

/// An entry is deprecated when its tags, or its default version's tags, say `Deprecated`.
pub fn is_deprecated(entry: &IndexEntry) -> bool {
    let deprecated = |tags: &[String]| tags.iter().any(|t| t.trim().eq_ignore_ascii_case("deprecated"));
    deprecated(&entry.tags) || entry.default_version().is_some_and(|v| deprecated(&v.tags))
}

/// The v1 form of an entry (SPEC §6): the first default version's fields lifted to the entry,
/// `versions` dropped. `None` for an entry with versions but no default (v1 omits it).
pub fn to_v1(entry: &IndexEntry) -> Option<IndexEntry> {
    if entry.versions.is_empty() {
        return Some(entry.clone());
    }
    let default = entry.default_version()?;
    let mut v1 = IndexEntry { versions: Vec::new(), ..entry.clone() };
    if !default.tags.is_empty() {
        v1.tags = default.tags.clone();
    }
    if !default.architectures.is_empty() {
        v1.architectures = default.architectures.clone();
    }
    if entry.kind == Some(DevfileType::Sample) {
        v1.git = default.git.clone();
    } else {
        v1.version = default.version.clone();
        v1.links = default.links.clone();
        v1.resources = default.resources.clone();
        v1.starter_projects = default.starter_projects.clone();
    }
    Some(v1)
}

#[cfg(test)]
mod tests;
