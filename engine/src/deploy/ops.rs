//! The workflow: deploy the working copy to an environment, plan and promote versions
//! from one environment to another, roll back, and compare what runs where.

use std::collections::BTreeMap;
use std::sync::Arc;

use similar::TextDiff;

use super::gates::{GateOptions, SchemaChange, run_gates, schema_changes};
use crate::error::{Result, SluiceError};
use crate::project::sampling::SampleOverride;
use crate::project::version_of;
use crate::project::{Pipe, Project};
use crate::session::EnvSession;
use crate::store::deployments::{Change, DeploymentState, GateResult, HistoryEvent};
use crate::util::progress::{OnProgress, Progress, ProgressUnit, no_progress};

/// The version of a pipe's working copy.
fn working_version(pipe: &Pipe) -> Result<String> {
    version_of(&pipe.text).map_err(|e| SluiceError::Usage(format!("pipe `{}`: {e}", pipe.name)))
}

fn select_pipes(all: impl Iterator<Item = String>, wanted: &[String]) -> Vec<String> {
    if wanted.is_empty() {
        all.collect()
    } else {
        wanted.to_vec()
    }
}

#[derive(Debug, Clone)]
pub struct DeployOutcome {
    pub pipe: String,
    pub version: String,
    pub previous: Option<String>,
    /// False when the version was already live.
    pub changed: bool,
}

/// Records the working copy of `pipes` (all when empty) as the live versions in `env`.
/// A protected environment only receives promoted versions.
pub async fn deploy(
    project: &Project,
    env: &str,
    pipes: &[String],
    actor: &str,
) -> Result<Vec<DeployOutcome>> {
    let environment = project.environment(env)?;
    if environment.protected {
        let what = match pipes {
            [one] => one.clone(),
            [] => "--all".to_string(),
            _ => pipes.join(" "),
        };
        let how = match project.deploying_environment() {
            Some(from) => format!(
                ": deploy to `{0}`, then promote (`sluice deploy {what} --env {0}`, then `sluice promote {what} --from {0} --to {env}`)",
                from.name
            ),
            None => String::new(),
        };
        return Err(SluiceError::Usage(format!(
            "environment `{env}` is protected: it runs promoted versions only{how}"
        )));
    }
    let names = select_pipes(project.pipes.keys().cloned(), pipes);
    if names.is_empty() {
        return Err(SluiceError::Usage(
            "the project has no pipes to deploy".into(),
        ));
    }
    let state = DeploymentState::open(environment)?;
    let lock = state.lock(actor).await?;
    let live = state.live().await?;
    let mut outcomes = Vec::new();
    let mut changes = Vec::new();
    for name in &names {
        let pipe = project.pipe(name)?;
        let version = working_version(pipe)?;
        let previous = live.get(name).map(|e| e.version.clone());
        let changed = previous.as_deref() != Some(version.as_str());
        if changed {
            changes.push(Change {
                pipe: name.clone(),
                version: version.clone(),
                text: pipe.text.clone(),
                action: "deploy".into(),
                actor: actor.to_string(),
                from_env: None,
                gates: Vec::new(),
            });
        }
        outcomes.push(DeployOutcome {
            pipe: name.clone(),
            version,
            previous,
            changed,
        });
    }
    if !changes.is_empty() {
        state.commit(&lock, changes).await?;
    }
    Ok(outcomes)
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlanKind {
    Added,
    Changed,
    Unchanged,
    /// Live in the target but not in the source: a promotion leaves it as it is.
    Removed,
}

#[derive(Debug, Clone)]
pub struct PlanItem {
    pub pipe: String,
    pub kind: PlanKind,
    /// Version live in the source.
    pub from_version: Option<String>,
    /// Version live in the target.
    pub to_version: Option<String>,
    /// Unified diff of the definitions (live in target → live in source).
    pub diff: String,
    pub schema_changes: Vec<SchemaChange>,
    /// Why the schemas could not be compared (a version does not plan in the target).
    pub plan_error: Option<String>,
}

impl PlanItem {
    pub fn is_breaking(&self) -> bool {
        self.schema_changes.iter().any(|c| c.is_breaking())
    }
}

#[derive(Debug, Clone)]
pub struct PromotionPlan {
    pub from: String,
    pub to: String,
    pub items: Vec<PlanItem>,
}

/// What promoting every pipe deployed in `from` to `to` would change.
pub async fn plan(project: Arc<Project>, from: &str, to: &str) -> Result<PromotionPlan> {
    let source = DeploymentState::open(project.environment(from)?)?;
    let target = DeploymentState::open(project.environment(to)?)?;
    let source_live = source.live().await?;
    let target_live = target.live().await?;
    let session = EnvSession::open(project.clone(), to, &SampleOverride::default())?;
    let mut items = Vec::new();
    for (pipe, entry) in &source_live {
        let to_version = target_live.get(pipe).map(|e| e.version.clone());
        let new = source.pipe(&project, pipe, &entry.version).await?;
        let kind = match &to_version {
            None => PlanKind::Added,
            Some(v) if *v == entry.version => PlanKind::Unchanged,
            Some(_) => PlanKind::Changed,
        };
        let mut item = PlanItem {
            pipe: pipe.clone(),
            kind: kind.clone(),
            from_version: Some(entry.version.clone()),
            to_version: to_version.clone(),
            diff: String::new(),
            schema_changes: Vec::new(),
            plan_error: None,
        };
        if kind == PlanKind::Unchanged {
            items.push(item);
            continue;
        }
        let old = match &to_version {
            Some(v) => Some(target.pipe(&project, pipe, v).await?),
            None => None,
        };
        let old_text = old.as_ref().map(|p| p.text.as_str()).unwrap_or("");
        item.diff = TextDiff::from_lines(old_text, &new.text)
            .unified_diff()
            .header(
                &format!("{to}/{pipe}@{}", to_version.as_deref().unwrap_or("none")),
                &format!("{from}/{pipe}@{}", entry.version),
            )
            .to_string();
        match session.plan_check(&new).await {
            Err(f) => {
                item.plan_error = Some(format!(
                    "the new version does not plan in `{to}`: {}",
                    f.message
                ))
            }
            Ok(new_schema) => {
                if let Some(old) = &old {
                    match session.plan_check(old).await {
                        Ok(old_schema) => {
                            item.schema_changes = schema_changes(&old_schema, &new_schema)
                        }
                        Err(f) => {
                            item.plan_error = Some(format!(
                                "the live version does not plan in `{to}`: {}",
                                f.message
                            ))
                        }
                    }
                } else {
                    item.schema_changes = new_schema
                        .fields()
                        .iter()
                        .map(|f| SchemaChange::Added {
                            column: f.name().clone(),
                            data_type: f.data_type().to_string(),
                        })
                        .collect();
                }
            }
        }
        items.push(item);
    }
    for (pipe, entry) in &target_live {
        if !source_live.contains_key(pipe) {
            items.push(PlanItem {
                pipe: pipe.clone(),
                kind: PlanKind::Removed,
                from_version: None,
                to_version: Some(entry.version.clone()),
                diff: String::new(),
                schema_changes: Vec::new(),
                plan_error: None,
            });
        }
    }
    Ok(PromotionPlan {
        from: from.to_string(),
        to: to.to_string(),
        items,
    })
}

#[derive(Debug, Clone, Default)]
pub struct PromoteOptions {
    /// Run the gates, change nothing.
    pub dry_run: bool,
    pub gates: GateOptions,
    pub actor: String,
}

#[derive(Debug, Clone)]
pub struct PromotedPipe {
    pub pipe: String,
    pub version: String,
    pub previous: Option<String>,
    pub gates: Vec<GateResult>,
    /// The version was already live in the target.
    pub up_to_date: bool,
}

impl PromotedPipe {
    pub fn passed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }
}

#[derive(Debug, Clone)]
pub struct PromotionReport {
    pub from: String,
    pub to: String,
    pub pipes: Vec<PromotedPipe>,
    /// False when a gate failed (then nothing changed) or on a dry run.
    pub applied: bool,
    pub dry_run: bool,
    /// The pid of a dead process whose lock on the target was taken over.
    pub stale_lock: Option<u64>,
}

impl PromotionReport {
    pub fn blocked(&self) -> bool {
        self.pipes.iter().any(|p| !p.passed())
    }

    /// Each failed gate as `pipe: gate: detail`.
    pub fn failed_gates(&self) -> Vec<String> {
        self.pipes
            .iter()
            .flat_map(|p| {
                p.gates
                    .iter()
                    .filter(|g| !g.passed)
                    .map(move |g| format!("{}: {}: {}", p.pipe, g.gate, g.detail))
            })
            .collect()
    }
}

/// Promotes the versions deployed in `from` (of `pipes`, all when empty) to `to`, all or
/// nothing: every gate of every pipe must pass before any live version changes.
pub async fn promote(
    project: Arc<Project>,
    from: &str,
    to: &str,
    pipes: &[String],
    options: &PromoteOptions,
) -> Result<PromotionReport> {
    promote_with_progress(project, from, to, pipes, options, &no_progress).await
}

/// `promote`, reporting each pipe whose gates start (of the pipes to promote).
pub async fn promote_with_progress(
    project: Arc<Project>,
    from: &str,
    to: &str,
    pipes: &[String],
    options: &PromoteOptions,
    progress: OnProgress<'_>,
) -> Result<PromotionReport> {
    if from == to {
        return Err(SluiceError::Usage(format!(
            "cannot promote from `{from}` to itself"
        )));
    }
    let source = DeploymentState::open(project.environment(from)?)?;
    let target = DeploymentState::open(project.environment(to)?)?;
    let source_live = source.live().await?;
    let names = select_pipes(source_live.keys().cloned(), pipes);
    if names.is_empty() {
        let how = if project.environment(from)?.protected {
            "it takes promotions only".to_string()
        } else {
            format!("deploy first (`sluice deploy --all --env {from}`)")
        };
        return Err(SluiceError::Usage(format!(
            "nothing is deployed in `{from}`: {how}"
        )));
    }
    // The lock is held from the first gate to the commit: what the gates saw live in
    // the target is what the promotion replaces.
    let lock = if options.dry_run {
        None
    } else {
        Some(target.lock(&options.actor).await?)
    };
    let target_live = target.live().await?;
    let mut report = PromotionReport {
        from: from.to_string(),
        to: to.to_string(),
        pipes: Vec::new(),
        applied: false,
        dry_run: options.dry_run,
        stale_lock: lock.as_ref().and_then(|l| l.stale_taken_over),
    };
    let mut changes = Vec::new();
    for (index, name) in names.iter().enumerate() {
        progress(&Progress::new(
            format!("gates of {name}"),
            index as u64,
            Some(names.len() as u64),
            ProgressUnit::Steps,
        ));
        let entry = source_live.get(name).ok_or_else(|| {
            if project.pipes.contains_key(name) {
                SluiceError::Usage(format!(
                    "pipe `{name}` was never deployed in `{from}`: deploy it first (`sluice deploy {name} --env {from}`)"
                ))
            } else {
                SluiceError::UnknownPipe {
                    name: name.clone(),
                    known: source_live.keys().cloned().collect(),
                }
            }
        })?;
        let candidate = source.pipe(&project, name, &entry.version).await?;
        let previous = target_live.get(name).map(|e| e.version.clone());
        if previous.as_deref() == Some(entry.version.as_str()) {
            report.pipes.push(PromotedPipe {
                pipe: name.clone(),
                version: entry.version.clone(),
                previous,
                gates: Vec::new(),
                up_to_date: true,
            });
            continue;
        }
        let live = match &previous {
            Some(v) => Some(target.pipe(&project, name, v).await?),
            None => None,
        };
        let gates = run_gates(
            &project,
            from,
            to,
            &candidate,
            live.as_ref(),
            &options.gates,
        )
        .await?;
        changes.push(Change {
            pipe: name.clone(),
            version: entry.version.clone(),
            text: candidate.text.clone(),
            action: "promote".into(),
            actor: options.actor.clone(),
            from_env: Some(from.to_string()),
            gates: gates.clone(),
        });
        report.pipes.push(PromotedPipe {
            pipe: name.clone(),
            version: entry.version.clone(),
            previous,
            gates,
            up_to_date: false,
        });
    }
    if report.blocked() || options.dry_run || changes.is_empty() {
        return Ok(report);
    }
    target
        .commit(lock.as_ref().expect("locked unless dry run"), changes)
        .await?;
    report.applied = true;
    Ok(report)
}

/// Makes the version live before the current one (or `to`) live again in `env`.
pub async fn rollback(
    project: &Project,
    env: &str,
    pipe: &str,
    to: Option<&str>,
    actor: &str,
) -> Result<HistoryEvent> {
    let state = DeploymentState::open(project.environment(env)?)?;
    let lock = state.lock(actor).await?;
    let live = state.live().await?;
    let current = live.get(pipe).ok_or_else(|| {
        SluiceError::Usage(format!(
            "pipe `{pipe}` has no deployed version in `{env}`: nothing to roll back"
        ))
    })?;
    // The versions made live before the current one, along the history: a rollback
    // only ever goes back this way (going forward is a promotion, with its gates).
    let lineage = live_lineage(&state.history(Some(pipe)).await?);
    let earlier = &lineage[..lineage.len().saturating_sub(1)];
    if lineage.last() != Some(&current.version) {
        return Err(SluiceError::State {
            env: env.to_string(),
            message: format!(
                "the history of `{pipe}` does not end with its live version {}: the deployment records are damaged",
                current.version
            ),
        });
    }
    let target = match to {
        Some(v) => {
            if v == current.version {
                return Err(SluiceError::Usage(format!(
                    "version `{v}` of `{pipe}` is already live in `{env}`"
                )));
            }
            if !earlier.iter().any(|e| e == v) {
                return Err(SluiceError::Usage(format!(
                    "version `{v}` of `{pipe}` was not live in `{env}` before {}: a rollback only goes back (versions before it: {}); to make another version live, promote it (see sluice history {pipe} --env {env})",
                    current.version,
                    if earlier.is_empty() { "none".to_string() } else { earlier.join(", ") }
                )));
            }
            v.to_string()
        }
        None => earlier.last().cloned().ok_or_else(|| {
            SluiceError::Usage(format!(
                "version `{}` is the first version of `{pipe}` in `{env}`: there is nothing before it to roll back to",
                current.version
            ))
        })?,
    };
    let text = state.version_text(pipe, &target).await?;
    let mut events = state
        .commit(
            &lock,
            vec![Change {
                pipe: pipe.to_string(),
                version: target,
                text,
                action: "rollback".into(),
                actor: actor.to_string(),
                from_env: None,
                gates: Vec::new(),
            }],
        )
        .await?;
    Ok(events.remove(0))
}

/// The versions a pipe's history made live, oldest first, as they stand after its
/// rollbacks: a deploy or promotion adds its version; a rollback to version V goes back
/// to the last V and forgets what came after it. The last one is the live version.
fn live_lineage(history: &[HistoryEvent]) -> Vec<String> {
    let mut lineage: Vec<String> = Vec::new();
    for e in history {
        if e.action == "rollback" {
            if let Some(i) = lineage.iter().rposition(|v| *v == e.version) {
                lineage.truncate(i + 1);
            } else {
                // A rollback to a version this history never made live (records from an
                // older Sluice): start the lineage there.
                lineage.clear();
                lineage.push(e.version.clone());
            }
        } else if lineage.last() != Some(&e.version) {
            lineage.push(e.version.clone());
        }
    }
    lineage
}

/// A pipe's working-copy version and the version live in each environment.
#[derive(Debug, Clone)]
pub struct PipeStatus {
    pub pipe: String,
    /// `None`: the pipe is no longer in pipes/.
    pub working: Option<String>,
    pub live: BTreeMap<String, Option<String>>,
}

/// Like `git status`: the working copy against every environment's live versions.
pub async fn status(project: &Project) -> Result<Vec<PipeStatus>> {
    let mut lives = BTreeMap::new();
    for (name, env) in &project.environments {
        lives.insert(name.clone(), DeploymentState::open(env)?.live().await?);
    }
    let mut names: Vec<String> = project.pipes.keys().cloned().collect();
    for live in lives.values() {
        for p in live.keys() {
            if !names.contains(p) {
                names.push(p.clone());
            }
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|pipe| {
            let working = match project.pipes.get(&pipe) {
                Some(p) => Some(working_version(p)?),
                None => None,
            };
            let live = lives
                .iter()
                .map(|(env, l)| (env.clone(), l.get(&pipe).map(|e| e.version.clone())))
                .collect();
            Ok(PipeStatus {
                pipe,
                working,
                live,
            })
        })
        .collect()
}

/// Deploys every pipe's working copy to `from` and promotes them all to `to` through
/// the gates, as `actor` (how `sluice init` and `sluice fixtures tpch --init` give both
/// environments the project's pipes on day one). A blocked promotion is an error
/// naming the failed gates; nothing is promoted then.
pub async fn deploy_and_promote(
    project: Arc<Project>,
    from: &str,
    to: &str,
    actor: &str,
) -> Result<PromotionReport> {
    deploy(&project, from, &[], actor).await?;
    let report = promote(
        project,
        from,
        to,
        &[],
        &PromoteOptions {
            actor: actor.to_string(),
            ..PromoteOptions::default()
        },
    )
    .await?;
    if report.blocked() {
        return Err(SluiceError::Blocked {
            message: format!(
                "the promotion of the pipes from `{from}` to `{to}` was blocked: {}",
                report.failed_gates().join("; ")
            ),
        });
    }
    Ok(report)
}

/// A definition of `pipe` in `session`'s environment, named as `sluice diff --versions`
/// names them: `working` (the project's file), `live` (the deployed version), or a
/// version id recorded in the environment.
pub async fn resolve_version(session: &EnvSession, pipe: &str, spec: &str) -> Result<Pipe> {
    match spec {
        "working" => Ok(session.project().pipe(pipe)?.clone()),
        "live" => session.resolve_pipe(pipe, true).await,
        version => {
            let state = session.deployments();
            if !state.has_version(pipe, version).await? {
                return Err(SluiceError::Usage(format!(
                    "pipe `{pipe}` has no version `{version}` in environment `{}` (use `live`, `working` or an id from `sluice history {pipe} --env {}`)",
                    session.environment().name,
                    session.environment().name
                )));
            }
            state.pipe(session.project(), pipe, version).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, action: &str, version: &str) -> HistoryEvent {
        HistoryEvent {
            seq,
            at: String::new(),
            actor: String::new(),
            action: action.into(),
            pipe: "p".into(),
            version: version.into(),
            previous: None,
            from_env: None,
            gates: Vec::new(),
        }
    }

    #[test]
    fn rollbacks_only_go_back() {
        let mut h = vec![
            event(1, "deploy", "v1"),
            event(2, "deploy", "v2"),
            event(3, "promote", "v3"),
        ];
        assert_eq!(live_lineage(&h), ["v1", "v2", "v3"]);
        h.push(event(4, "rollback", "v2"));
        assert_eq!(live_lineage(&h), ["v1", "v2"]);
        // A second rollback goes further back, never forward to v3.
        h.push(event(5, "rollback", "v1"));
        assert_eq!(live_lineage(&h), ["v1"]);
        h.push(event(6, "deploy", "v4"));
        assert_eq!(live_lineage(&h), ["v1", "v4"]);
        h.push(event(7, "deploy", "v4"));
        assert_eq!(live_lineage(&h), ["v1", "v4"]);
    }
}
