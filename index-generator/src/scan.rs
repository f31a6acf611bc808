//! Scans a registry repository (SPEC §2) into index entries, collecting every problem (SPEC §3)
//! and deriving each field as SPEC §4 says.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use schemas::index::{DEPLOYMENT_SCOPES, DevfileType, IndexEntry, Version};
use schemas::last_modified::{LastModifiedFile, UNVERSIONED};
use schemas::oci;
use schemas::stack_yaml::StackYaml;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::devfile::{self, CheckedDevfile, DevfileSchemas};
use crate::diagnostics::Diagnostic;
use crate::pack::{is_dropped, is_loose};
use crate::source::Checkout;
use crate::yaml::Document;

const STACKS_DIR: &str = "stacks";
const EXTRA_ENTRIES: &str = "extraDevfileEntries.yaml";
const LAST_MODIFIED: &str = "last_modified.json";
const STACK_YAML: &str = "stack.yaml";
const DEVFILE_NAMES: [&str; 2] = ["devfile.yaml", ".devfile.yaml"];

/// What a scan found: the entries that passed (stacks, then samples) and every problem.
#[derive(Debug, Default)]
pub struct Scan {
    pub entries: Vec<IndexEntry>,
    pub problems: Vec<Diagnostic>,
    /// How many devfiles were checked.
    pub devfiles: usize,
    /// Where the files of every stack version in `entries` are, stack by stack.
    pub sources: Vec<VersionSource>,
}

/// The folder of one stack version that made it into the index: what gets packed and published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSource {
    /// The stack folder's name (`go`), which names the OCI repository `devfile-catalog/go`.
    pub stack: String,
    /// The version as in the index, which is the OCI tag.
    pub version: String,
    /// The version folder relative to the checkout root (`stacks/go` or `stacks/java-maven/1.3.0`).
    pub folder: String,
    /// `devfile.yaml` or `.devfile.yaml`.
    pub devfile_name: &'static str,
}

/// Something that wants to know how far a scan got.
pub trait Progress: Sync {
    /// Called once the number of devfiles to check is known.
    fn start(&self, _devfiles: u64) {}
    /// Called after each devfile.
    fn devfile_done(&self, _file: &str) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0} is not a registry repository: it has neither a stacks/ folder nor an extraDevfileEntries.yaml")]
    NotARegistry(String),
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
}

/// A version folder to check, before anything is read.
struct VersionJob {
    /// `stacks/go/1.0.0` (or `stacks/go` for a single-version stack), relative to the root.
    folder: String,
    /// The devfile's file name in that folder.
    devfile_name: &'static str,
}

pub fn scan(checkout: &Checkout, schemas: &DevfileSchemas, progress: &dyn Progress) -> Result<Scan, ScanError> {
    let root = checkout.root.as_path();
    let stacks_dir = root.join(STACKS_DIR);
    let has_extra = root.join(EXTRA_ENTRIES).is_file();
    if !stacks_dir.is_dir() && !has_extra {
        return Err(ScanError::NotARegistry(root.display().to_string()));
    }
    let mut scan = Scan::default();
    let overrides = read_last_modified(root, &mut scan.problems)?;

    let stack_folders = if stacks_dir.is_dir() { sorted_dirs(&stacks_dir)? } else { Vec::new() };
    let mut plans = Vec::new();
    for name in &stack_folders {
        plans.push(plan_stack(root, name, &mut scan.problems)?);
    }
    let jobs: Vec<&VersionJob> = plans.iter().flat_map(|p| &p.jobs).collect();
    progress.start(jobs.len() as u64);
    let mut results = check_all(root, &jobs, schemas, progress)?.into_iter();
    // `git log` ran meanwhile; `lastModified` needs it from here on.
    checkout.settle()?;
    for plan in plans {
        let mut checked = Vec::with_capacity(plan.jobs.len());
        for _ in &plan.jobs {
            let (result, problems) = results.next().expect("one result per devfile");
            scan.problems.extend(problems);
            scan.devfiles += 1;
            checked.push(result);
        }
        if let Some((entry, sources)) = assemble_stack(plan, checked, checkout, &overrides, &mut scan.problems) {
            scan.entries.push(entry);
            scan.sources.extend(sources);
        }
    }

    if has_extra {
        read_extra_entries(root, &overrides, &mut scan)?;
    }
    crate::diagnostics::sort(&mut scan.problems);
    Ok(scan)
}

/// What checking one devfile gives: the devfile and its files (`None` when it has errors), and
/// its problems.
type Checked = (Option<(CheckedDevfile, Vec<String>)>, Vec<Diagnostic>);

/// Checks every devfile, on one thread per core (parsing and validating are most of a scan), each
/// thread taking the next devfile not taken yet; the results come back in the order of `jobs`,
/// and the error, if any, is the first one in that order.
fn check_all(
    root: &Path,
    jobs: &[&VersionJob],
    schemas: &DevfileSchemas,
    progress: &dyn Progress,
) -> Result<Vec<Checked>, ScanError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { return done };
            let file = format!("{}/{}", job.folder, job.devfile_name);
            let mut problems = Vec::new();
            let result = check_version(root, job, &file, schemas, &mut problems);
            progress.devfile_done(&file);
            done.push((i, result.map(|checked| (checked, problems))));
        }
    };
    let mut all = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for other in others {
            all.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        all
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, result)| result).collect()
}

/// Sub-folders of `dir`, in byte-wise name order.
fn sorted_dirs(dir: &Path) -> Result<Vec<String>, ScanError> {
    Ok(read_dir(dir)?.into_iter().filter(|(_, is_dir)| *is_dir).map(|(name, _)| name).collect())
}

/// `(name, is_dir)` of every entry of `dir`, sorted by name. Symbolic links are followed.
fn read_dir(dir: &Path) -> Result<Vec<(String, bool)>, ScanError> {
    let io = |source| ScanError::Io { path: dir.display().to_string(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let is_dir = entry.path().is_dir();
        out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    out.sort();
    Ok(out)
}

/// A stack folder before its devfiles are checked.
struct StackPlan {
    folder: String,
    /// `Some` for a multi-version stack whose stack.yaml is valid.
    stack_yaml: Option<StackYaml>,
    /// Line of the stack.yaml mapping, for problems about the whole stack.
    stack_yaml_line: usize,
    /// `(version, default)` of each job, for a multi-version stack.
    versions: Vec<(String, bool)>,
    jobs: Vec<VersionJob>,
    /// The stack is out of the index whatever its devfiles say.
    excluded: bool,
}

fn plan_stack(root: &Path, name: &str, problems: &mut Vec<Diagnostic>) -> Result<StackPlan, ScanError> {
    let folder = format!("{STACKS_DIR}/{name}");
    let dir = root.join(&folder);
    let mut plan = StackPlan {
        folder: folder.clone(),
        stack_yaml: None,
        stack_yaml_line: 0,
        versions: Vec::new(),
        jobs: Vec::new(),
        excluded: false,
    };
    if dir.join(STACK_YAML).is_file() {
        let file = format!("{folder}/{STACK_YAML}");
        let Some((doc, stack)) = read_yaml::<StackYaml>(root, &file, "stack-yaml/field", problems)? else {
            plan.excluded = true;
            return Ok(plan);
        };
        let before = problems.len();
        check_stack_yaml(root, &folder, &file, &doc, &stack, problems);
        plan.excluded = problems.len() > before;
        for (i, v) in stack.versions.iter().enumerate() {
            if v.git.is_some() {
                problems.push(Diagnostic::warning(
                    &file,
                    doc.line(&format!("/versions/{i}/git")),
                    "stack-yaml/remote-version",
                    format!(
                        "version {} comes from a Git remote, which this generator does not fetch yet; it is left out",
                        v.version
                    ),
                ));
                continue;
            }
            let version_dir = format!("{folder}/{}", v.version);
            if let Some(devfile_name) = devfile_in(root, &version_dir, problems) {
                plan.jobs.push(VersionJob { folder: version_dir, devfile_name });
                plan.versions.push((v.version.clone(), v.default));
            } else {
                // A missing folder is reported by check_stack_yaml; a missing devfile here.
                plan.excluded |= root.join(&version_dir).is_dir();
            }
        }
        plan.stack_yaml = Some(stack);
        plan.stack_yaml_line = doc.line("");
    } else {
        match devfile_in(root, &folder, problems) {
            Some(devfile_name) => plan.jobs.push(VersionJob { folder, devfile_name }),
            None => plan.excluded = true,
        }
    }
    Ok(plan)
}

/// The devfile of a version folder; reports a folder with none, or with both names.
fn devfile_in(root: &Path, folder: &str, problems: &mut Vec<Diagnostic>) -> Option<&'static str> {
    let dir = root.join(folder);
    if !dir.is_dir() {
        return None;
    }
    let present: Vec<&'static str> = DEVFILE_NAMES.into_iter().filter(|n| dir.join(n).is_file()).collect();
    match present.as_slice() {
        [one] => Some(one),
        [] => {
            problems.push(Diagnostic::error(
                folder,
                0,
                "stack/missing-devfile",
                "the folder has no devfile.yaml, .devfile.yaml or stack.yaml",
            ));
            None
        }
        _ => {
            problems.push(Diagnostic::error(
                format!("{folder}/devfile.yaml"),
                0,
                "stack/devfile-conflict",
                "both devfile.yaml and .devfile.yaml are present: keep one",
            ));
            None
        }
    }
}

fn check_stack_yaml(
    root: &Path,
    folder: &str,
    file: &str,
    doc: &Document,
    stack: &StackYaml,
    problems: &mut Vec<Diagnostic>,
) {
    for (key, value) in [("name", &stack.name), ("displayName", &stack.display_name), ("icon", &stack.icon)] {
        if value.trim().is_empty() {
            problems.push(Diagnostic::error(file, doc.line(""), "stack-yaml/field", format!("{key} is required")));
        }
    }
    if stack.versions.is_empty() {
        problems.push(Diagnostic::error(
            file,
            doc.line("/versions"),
            "stack-yaml/field",
            "versions must list at least one version",
        ));
    }
    let mut defaults = 0;
    let mut seen = HashSet::new();
    for (i, v) in stack.versions.iter().enumerate() {
        let at = doc.line(&format!("/versions/{i}/version"));
        if semver::Version::parse(&v.version).is_err() {
            problems.push(Diagnostic::error(
                file,
                at,
                "stack-yaml/semver",
                format!("version {:?} is not a semantic version (x.y.z)", v.version),
            ));
        } else if v.git.is_none() && !root.join(folder).join(&v.version).is_dir() {
            problems.push(Diagnostic::error(
                file,
                at,
                "stack-yaml/version-folder",
                format!("version {} has no folder {folder}/{}", v.version, v.version),
            ));
        }
        if !seen.insert(v.version.as_str()) {
            problems.push(Diagnostic::error(
                file,
                at,
                "stack-yaml/field",
                format!("version {} is listed more than once", v.version),
            ));
        }
        if v.default {
            defaults += 1;
            if defaults == 2 {
                problems.push(Diagnostic::error(
                    file,
                    doc.line(&format!("/versions/{i}/default")),
                    "stack-yaml/default",
                    format!("version {} is a second default: exactly one version must be the default", v.version),
                ));
            }
        }
    }
    if defaults == 0 && !stack.versions.is_empty() {
        problems.push(Diagnostic::error(
            file,
            0,
            "stack-yaml/default",
            "no version is the default: exactly one must have `default: true`",
        ));
    }
}

/// Reads a YAML file into `T`. Syntax errors are `yaml`; shape errors are `shape_rule`.
fn read_yaml<T: DeserializeOwned>(
    root: &Path,
    file: &str,
    shape_rule: &str,
    problems: &mut Vec<Diagnostic>,
) -> Result<Option<(Document, T)>, ScanError> {
    let text = read_text(root, file)?;
    let doc = match Document::parse(&text) {
        Ok(doc) => doc,
        Err(e) => {
            problems.push(Diagnostic::error(file, e.line, "yaml", format!("not valid YAML: {}", e.message)));
            return Ok(None);
        }
    };
    match serde_json::from_value::<T>(doc.value.clone()) {
        Ok(value) => Ok(Some((doc, value))),
        Err(e) => {
            problems.push(Diagnostic::error(file, doc.line(""), shape_rule, format!("unexpected shape: {e}")));
            Ok(None)
        }
    }
}

fn read_text(root: &Path, file: &str) -> Result<String, ScanError> {
    std::fs::read_to_string(root.join(file)).map_err(|source| ScanError::Io { path: file.to_string(), source })
}

/// Checks one version's devfile and lists its resources.
fn check_version(
    root: &Path,
    job: &VersionJob,
    file: &str,
    schemas: &DevfileSchemas,
    problems: &mut Vec<Diagnostic>,
) -> Result<Option<(CheckedDevfile, Vec<String>)>, ScanError> {
    let text = read_text(root, file)?;
    let Some(checked) = devfile::check(file, &text, schemas, problems) else {
        return Ok(None);
    };
    Ok(Some((checked, resources(root, job)?)))
}

/// `resources` of a version (SPEC §4): the devfile, `archive.tar` when anything gets packed,
/// and the loose files, sorted by name.
fn resources(root: &Path, job: &VersionJob) -> Result<Vec<String>, ScanError> {
    let mut out = vec![job.devfile_name.to_string()];
    let mut packed = false;
    for (name, _) in read_dir(&root.join(&job.folder))? {
        if name == job.devfile_name || is_dropped(&name) {
            continue;
        }
        if is_loose(&name) {
            out.push(name);
        } else {
            packed = true;
        }
    }
    if packed {
        out.push(oci::ARCHIVE_NAME.to_string());
    }
    out.sort();
    Ok(out)
}

/// `lastModified` overrides: (kind, name, version) → time.
type Overrides = HashMap<(DevfileType, String, String), String>;

fn read_last_modified(root: &Path, problems: &mut Vec<Diagnostic>) -> Result<Overrides, ScanError> {
    let mut out = Overrides::new();
    if !root.join(LAST_MODIFIED).is_file() {
        return Ok(out);
    }
    let text = read_text(root, LAST_MODIFIED)?;
    let file: LastModifiedFile = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            problems.push(Diagnostic::error(
                LAST_MODIFIED,
                e.line(),
                "last-modified",
                format!("not a valid last_modified.json: {e}"),
            ));
            return Ok(out);
        }
    };
    for (kind, items) in [(DevfileType::Stack, file.stacks), (DevfileType::Sample, file.samples)] {
        for item in items {
            match normalize_time(&item.last_modified) {
                Some(time) => {
                    out.insert((kind, item.name, item.version), time);
                }
                None => problems.push(Diagnostic::error(
                    LAST_MODIFIED,
                    0,
                    "last-modified",
                    format!(
                        "lastModified {:?} of {} {} is not an RFC 3339 time",
                        item.last_modified, item.name, item.version
                    ),
                )),
            }
        }
    }
    Ok(out)
}

/// RFC 3339 with the original offset, a zero offset written `Z`.
fn normalize_time(text: &str) -> Option<String> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// The latest of RFC 3339 times, compared as instants; the original text is kept.
fn latest<'a>(times: impl Iterator<Item = &'a String>) -> Option<String> {
    times
        .filter_map(|t| Some((chrono::DateTime::parse_from_rfc3339(t).ok()?, t)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, t)| t.clone())
}

fn assemble_stack(
    plan: StackPlan,
    checked: Vec<Option<(CheckedDevfile, Vec<String>)>>,
    checkout: &Checkout,
    overrides: &Overrides,
    problems: &mut Vec<Diagnostic>,
) -> Option<(IndexEntry, Vec<VersionSource>)> {
    if plan.excluded {
        return None;
    }
    let stack_name = plan.folder.trim_start_matches("stacks/").to_string();
    let multi = plan.stack_yaml.is_some();
    let entry_file = if multi {
        format!("{}/{STACK_YAML}", plan.folder)
    } else {
        format!("{}/{}", plan.folder, plan.jobs[0].devfile_name)
    };
    let any_failed = checked.iter().any(Option::is_none);
    let mut versions: Vec<(Version, CheckedDevfile)> = Vec::new();
    let mut sources = Vec::new();
    for (i, result) in checked.into_iter().enumerate() {
        let Some((devfile, resources)) = result else { continue };
        let job = &plan.jobs[i];
        let (folder_version, default) = if multi { plan.versions[i].clone() } else { (String::new(), true) };
        let mut version = devfile.metadata.version.clone();
        if version.is_empty() {
            if multi {
                version = folder_version.clone();
            } else {
                problems.push(Diagnostic::error(
                    format!("{}/{}", job.folder, job.devfile_name),
                    0,
                    "entry/field",
                    "metadata.version is required: it names the version in the index and in the OCI tag",
                ));
                continue;
            }
        }
        if multi && version != folder_version {
            problems.push(Diagnostic::warning(
                format!("{}/{}", job.folder, job.devfile_name),
                0,
                "stack-yaml/version-mismatch",
                format!("metadata.version {version} differs from the folder's version {folder_version} in stack.yaml; the index uses {version}"),
            ));
        }
        let name = if multi {
            plan.stack_yaml.as_ref().map(|s| s.name.as_str()).unwrap_or_default()
        } else {
            devfile.metadata.name.as_str()
        };
        let last_modified = [name, stack_name.as_str()]
            .iter()
            .find_map(|n| overrides.get(&(DevfileType::Stack, n.to_string(), version.clone())))
            .or_else(|| checkout.folder_times().get(&job.folder))
            .cloned();
        let m = &devfile.metadata;
        sources.push(VersionSource {
            stack: stack_name.clone(),
            version: version.clone(),
            folder: job.folder.clone(),
            devfile_name: job.devfile_name,
        });
        versions.push((
            Version {
                version: version.clone(),
                schema_version: devfile.schema_version.clone(),
                default,
                description: m.description.clone(),
                tags: m.tags.clone(),
                architectures: m.architectures.clone(),
                icon: m.icon.clone(),
                links: BTreeMap::from([("self".to_string(), oci::stack_reference(&stack_name, &version))]),
                command_groups: devfile.command_groups.clone(),
                resources,
                starter_projects: devfile.starter_projects.clone(),
                parent: devfile.parent.clone(),
                last_modified,
                ..Version::default()
            },
            devfile,
        ));
    }
    if versions.is_empty() {
        return None;
    }
    if multi {
        // Newest first; the versions passed check_stack_yaml, so they parse.
        versions.sort_by(|a, b| match (semver::Version::parse(&a.0.version), semver::Version::parse(&b.0.version)) {
            (Ok(x), Ok(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        });
    }
    let Some(default) = versions.iter().find(|(v, _)| v.default) else {
        let why = if any_failed { " (the default version has problems and was left out)" } else { "" };
        problems.push(Diagnostic::error(
            &entry_file,
            0,
            "entry/default",
            format!("stack {stack_name} has no default version{why}; the stack is left out"),
        ));
        return None;
    };
    let entry_line = if multi { plan.stack_yaml_line } else { default.1.metadata_line };
    let first = |f: fn(&CheckedDevfile) -> &String| {
        versions.iter().map(|(_, d)| f(d)).find(|s| !s.is_empty()).cloned().unwrap_or_default()
    };
    let (name, display_name, description, icon) = match &plan.stack_yaml {
        Some(s) => (s.name.clone(), s.display_name.clone(), s.description.clone(), s.icon.clone()),
        None => {
            let m = &default.1.metadata;
            (m.name.clone(), m.display_name.clone(), m.description.clone(), m.icon.clone())
        }
    };
    let mut architectures: Vec<String> = Vec::new();
    if versions.iter().all(|(v, _)| !v.architectures.is_empty()) {
        for arch in versions.iter().flat_map(|(v, _)| &v.architectures) {
            if !architectures.contains(arch) {
                architectures.push(arch.clone());
            }
        }
    }
    let entry = IndexEntry {
        name,
        display_name,
        description,
        kind: Some(DevfileType::Stack),
        tags: default.0.tags.clone(),
        architectures,
        icon,
        global_memory_limit: first(|d| &d.metadata.global_memory_limit),
        project_type: first(|d| &d.metadata.project_type),
        language: first(|d| &d.metadata.language),
        provider: first(|d| &d.metadata.provider),
        support_url: first(|d| &d.metadata.support_url),
        last_modified: latest(versions.iter().filter_map(|(v, _)| v.last_modified.as_ref())),
        versions: versions.into_iter().map(|(v, _)| v).collect(),
        ..IndexEntry::default()
    };
    warn_missing(&entry, &entry_file, entry_line, problems);
    Some((entry, sources))
}

/// Missing provider, supportUrl and architectures are warnings (SPEC §3).
fn warn_missing(entry: &IndexEntry, file: &str, line: usize, problems: &mut Vec<Diagnostic>) {
    let what = match entry.kind {
        Some(DevfileType::Sample) => "sample",
        _ => "stack",
    };
    if entry.provider.is_empty() {
        problems.push(Diagnostic::warning(
            file,
            line,
            "entry/provider",
            format!("{what} {} has no provider", entry.name),
        ));
    }
    if entry.support_url.is_empty() {
        problems.push(Diagnostic::warning(
            file,
            line,
            "entry/support-url",
            format!("{what} {} has no supportUrl", entry.name),
        ));
    }
    let declares_architectures =
        !entry.architectures.is_empty() || entry.versions.iter().any(|v| !v.architectures.is_empty());
    if !declares_architectures {
        problems.push(Diagnostic::warning(
            file,
            line,
            "entry/architectures",
            format!("{what} {} declares no architectures (it is listed for all of them)", entry.name),
        ));
    }
}

fn read_extra_entries(root: &Path, overrides: &Overrides, scan: &mut Scan) -> Result<(), ScanError> {
    let problems = &mut scan.problems;
    let Some((doc, _)) = read_yaml::<Value>(root, EXTRA_ENTRIES, "entry/field", problems)? else {
        return Ok(());
    };
    if !doc.value.is_object() && !doc.value.is_null() {
        problems.push(Diagnostic::error(
            EXTRA_ENTRIES,
            doc.line(""),
            "entry/field",
            "extraDevfileEntries.yaml must be a mapping with `samples` and `stacks`",
        ));
        return Ok(());
    }
    let mut samples = Vec::new();
    // Stacks first, then samples (SPEC §4); each list keeps its file order.
    for (list, kind) in [("stacks", DevfileType::Stack), ("samples", DevfileType::Sample)] {
        let items = doc.get(&format!("/{list}")).and_then(Value::as_array).cloned().unwrap_or_default();
        for (i, item) in items.into_iter().enumerate() {
            let pointer = format!("/{list}/{i}");
            let mut entry: IndexEntry = match serde_json::from_value(item) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(Diagnostic::error(
                        EXTRA_ENTRIES,
                        doc.line(&pointer),
                        "entry/field",
                        format!("{list}[{i}] has an unexpected shape: {e}"),
                    ));
                    continue;
                }
            };
            entry.kind = Some(kind);
            if !check_extra_entry(&doc, &pointer, &entry, problems) {
                continue;
            }
            set_extra_last_modified(&mut entry, overrides);
            warn_missing(&entry, EXTRA_ENTRIES, doc.line(&pointer), problems);
            match kind {
                DevfileType::Stack => scan.entries.push(entry),
                DevfileType::Sample => samples.push(entry),
            }
        }
    }
    scan.entries.extend(samples);
    Ok(())
}

/// SPEC §3 "Entries". Returns whether the entry goes into the index.
fn check_extra_entry(doc: &Document, pointer: &str, entry: &IndexEntry, problems: &mut Vec<Diagnostic>) -> bool {
    let before = problems.iter().filter(|p| p.is_error()).count();
    let line = doc.line(pointer);
    let error = |problems: &mut Vec<Diagnostic>, at: usize, rule: &str, message: String| {
        problems.push(Diagnostic::error(EXTRA_ENTRIES, at, rule, message))
    };
    let label = if entry.name.is_empty() {
        pointer.trim_start_matches('/').replace('/', "[") + "]"
    } else {
        entry.name.clone()
    };
    if entry.name.trim().is_empty() {
        error(problems, line, "entry/field", format!("{label}: name is required"));
    }
    match entry.kind {
        Some(DevfileType::Stack) => {
            if entry.versions.is_empty() {
                error(problems, line, "entry/field", format!("stack {label} needs versions"));
            }
            for (i, v) in entry.versions.iter().enumerate() {
                let at = doc.line(&format!("{pointer}/versions/{i}"));
                for (key, missing) in [
                    ("version", v.version.is_empty()),
                    ("schemaVersion", v.schema_version.is_empty()),
                    ("links", v.links.is_empty()),
                    ("resources", v.resources.is_empty()),
                ] {
                    if missing {
                        error(problems, at, "entry/field", format!("stack {label}: versions[{i}] needs {key}"));
                    }
                }
            }
            let defaults = entry.versions.iter().filter(|v| v.default).count();
            if !entry.versions.is_empty() && defaults != 1 {
                error(
                    problems,
                    line,
                    "entry/default",
                    format!("stack {label} has {defaults} default versions: exactly one is required"),
                );
            }
        }
        _ => {
            let remotes_ok = |git: &Option<schemas::index::Git>| git.as_ref().is_some_and(|g| g.remotes.len() == 1);
            // The line of `remotes` when there is one, else of the sample or version.
            let git_line = |at: &str| doc.line(&format!("{at}/git/remotes"));
            if entry.versions.is_empty() {
                if !remotes_ok(&entry.git) {
                    error(
                        problems,
                        git_line(pointer),
                        "entry/git",
                        format!("sample {label} needs git with exactly one remote"),
                    );
                }
            } else {
                for (i, v) in entry.versions.iter().enumerate() {
                    if !remotes_ok(&v.git) {
                        let at = git_line(&format!("{pointer}/versions/{i}"));
                        error(
                            problems,
                            at,
                            "entry/git",
                            format!("sample {label}: versions[{i}] needs git with exactly one remote"),
                        );
                    }
                }
            }
        }
    }
    let scopes = std::iter::once((pointer.to_string(), &entry.deployment_scopes)).chain(
        entry.versions.iter().enumerate().map(|(i, v)| (format!("{pointer}/versions/{i}"), &v.deployment_scopes)),
    );
    for (at, map) in scopes {
        for key in map.keys().filter(|k| !DEPLOYMENT_SCOPES.contains(&k.as_str())) {
            error(
                problems,
                doc.line(&format!("{at}/deploymentScopes/{key}")),
                "entry/deployment-scopes",
                format!("{label}: deploymentScopes key {key:?} is not one of innerloop, outerloop"),
            );
        }
    }
    problems.iter().filter(|p| p.is_error()).count() == before
}

fn set_extra_last_modified(entry: &mut IndexEntry, overrides: &Overrides) {
    let kind = entry.kind.unwrap_or_default();
    if entry.versions.is_empty() {
        if let Some(t) = overrides.get(&(kind, entry.name.clone(), UNVERSIONED.to_string())) {
            entry.last_modified = Some(t.clone());
        }
        return;
    }
    for v in &mut entry.versions {
        if let Some(t) = overrides.get(&(kind, entry.name.clone(), v.version.clone())) {
            v.last_modified = Some(t.clone());
        }
    }
    let latest_version = latest(entry.versions.iter().filter_map(|v| v.last_modified.as_ref()));
    if latest_version.is_some() {
        entry.last_modified = latest_version;
    }
}
