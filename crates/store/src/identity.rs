//! Identity stitching (migration 0100): recording links, folding them into shoppers, and the
//! journey keys and touch lookups the recompute and the conversion detail share.
//!
//! An event's journey key is the shopper (component) of its first id (user, else anonymous,
//! else session, typed as in [`tally_attribution::identity`]), or that id itself when it was
//! never linked. The ids of one event are linked by the event, so they share the key unless
//! the component cap refused their link; the first id decides then, as before stitching.
//! With cross-session stitching off the key is the session.

use crate::db::Database;
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::recompute::{self, RecomputeJob};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use std::collections::{BTreeSet, HashMap};
use tally_attribution::identity::{Components, IdKind, LinkOutcome};
use uuid::Uuid;

/// The typed first id of the event row `e`; `attribution_events_touches_by_identity` and
/// `attribution_events_conversions_by_identity` index its untyped value.
const FIRST_ID: &str = "CASE WHEN e.user_id IS NOT NULL THEN 'u:' || e.user_id \
     WHEN e.anonymous_id IS NOT NULL THEN 'a:' || e.anonymous_id ELSE 's:' || e.session_id END";

/// How the tenant's journeys are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyScope {
    /// The shopper: every id linked to the event's first id.
    CrossSession,
    /// The session only.
    Session,
}

impl JourneyScope {
    pub fn new(cross_session: bool) -> Self {
        if cross_session {
            Self::CrossSession
        } else {
            Self::Session
        }
    }

    /// SQL for the typed id of event row `e` that decides its journey key: its first id when
    /// stitching across sessions, else its session. [`Self::keys`] turns these into keys.
    pub(crate) fn first_id(self) -> &'static str {
        match self {
            Self::CrossSession => FIRST_ID,
            Self::Session => "'s:' || e.session_id",
        }
    }

    /// Replaces each id in `ids` (from [`Self::first_id`]) by its journey key: its shopper, when
    /// it was ever linked. A lookup of the distinct ids rather than a join in the events query:
    /// right after a bulk load the planner's statistics of `identity_members` are stale, and a
    /// join planned on them (a nested loop over a sequential scan) took minutes for one day.
    pub(crate) async fn keys<'a>(
        self,
        conn: &mut PgConnection,
        tenant: TenantId,
        ids: impl Iterator<Item = &'a mut String>,
    ) -> Result<(), StoreError> {
        if self == Self::Session {
            return Ok(());
        }
        let mut ids: Vec<&mut String> = ids.collect();
        let mut distinct: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        // When the tenant has fewer linked ids than the window has ids, reading them all beats
        // probing the index once per id: 6 ms against 455 ms for 43,614 members and 239,346
        // ids (the 1 M-event day of `tally bench attribution`, with links). The count stops
        // where the probes would win, so it costs little when they do.
        let members: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT FROM identity_members WHERE tenant_id = $1 LIMIT $2) m",
        )
        .bind(tenant)
        .bind(distinct.len() as i64)
        .fetch_one(&mut *conn)
        .await?;
        let rows: Vec<(String, String)> = if (members as usize) < distinct.len() {
            sqlx::query_as("SELECT identity, component FROM identity_members WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(conn)
                .await?
        } else {
            sqlx::query_as(
                "SELECT identity, component FROM identity_members
                 WHERE tenant_id = $1 AND identity = ANY ($2)",
            )
            .bind(tenant)
            .bind(&distinct)
            .fetch_all(conn)
            .await?
        };
        let components: HashMap<String, String> = rows.into_iter().collect();
        for id in &mut ids {
            if let Some(component) = components.get(id.as_str()) {
                id.clone_from(component);
            }
        }
        Ok(())
    }

    /// Every id of the journeys keyed `keys`, as parallel (id, key) lists: the members of each
    /// shopper, or the key alone for a never-linked id (and for a session).
    pub(crate) async fn ids(
        self,
        conn: &mut PgConnection,
        tenant: TenantId,
        keys: &[&str],
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut pairs: BTreeSet<(String, String)> = keys
            .iter()
            .map(|k| (k.to_string(), k.to_string()))
            .collect();
        if self == Self::CrossSession {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT identity, component FROM identity_members
                 WHERE tenant_id = $1 AND component = ANY ($2)",
            )
            .bind(tenant)
            .bind(keys)
            .fetch_all(&mut *conn)
            .await?;
            pairs.extend(rows);
        }
        Ok(pairs.into_iter().unzip())
    }

    /// Touches of `ids` (parallel to their journey `keys`) in `[from, to)`: (id, key, time,
    /// channel). Ids go in as arrays, so the plan is a nested loop over an index whatever the
    /// table's statistics say (they are stale right after a bulk load).
    pub(crate) async fn touches(
        self,
        conn: &mut PgConnection,
        tenant: TenantId,
        (ids, keys): (&[String], &[String]),
        (from, to): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<(Uuid, String, DateTime<Utc>, String)>, StoreError> {
        let matches = match self {
            Self::CrossSession => format!(
                "COALESCE(e.user_id, e.anonymous_id, e.session_id) = substr(c.identity, 3)
                 AND {FIRST_ID} = c.identity"
            ),
            Self::Session => "e.session_id = substr(c.identity, 3)".into(),
        };
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT e.id, c.key, e.occurred_at, e.channel_code
             FROM unnest($2::text[], $3::text[]) AS c(identity, key)
             JOIN attribution_events e ON e.tenant_id = $1 AND e.kind = 'touch' AND {matches}
                  AND e.occurred_at >= $4 AND e.occurred_at < $5"
        )))
        .bind(tenant)
        .bind(ids)
        .bind(keys)
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await?)
    }
}

/// What a fold did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fold {
    /// Links folded.
    pub links: usize,
    /// Shoppers that a link joined to another, by their name after the fold.
    pub merged: Vec<String>,
    /// Links refused by the cap.
    pub refused: usize,
}

/// What a window's recompute folds, and how: its run's place in the links sequence.
#[derive(Debug, Clone, Copy)]
pub struct Stitching {
    /// The window's recompute row, which keeps how far its events' links are folded
    /// (`links_folded_through`, migration 0140).
    pub recompute_id: Uuid,
    /// The links horizon of the run's ingest barrier ([`recompute::ingest_barrier`]).
    pub horizon: i64,
    /// The tenant's `identity_max_component_ids`.
    pub max_ids: i32,
}

impl Stitching {
    /// Links numbered after this window's last fold and up to the horizon are new to it.
    pub(crate) async fn window_mark(&self, conn: &mut PgConnection) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT links_folded_through FROM attribution_recompute_jobs WHERE id = $1",
        )
        .bind(self.recompute_id)
        .fetch_optional(conn)
        .await?
        .unwrap_or(0))
    }
}

/// SQL for the link event row `e` carries, when it is new to a window (numbered in `($4, $5]`:
/// after the window's mark, up to the horizon) and names two ids or more: its number, and its
/// ids (user, anonymous, session; NULL where absent). Two NULLs otherwise.
pub(crate) const NEW_LINK: &str = "CASE WHEN e.links_seq > $4 AND e.links_seq <= $5 \
         AND num_nonnulls(e.session_id, e.anonymous_id, e.user_id) >= 2 THEN e.links_seq END, \
     CASE WHEN e.links_seq > $4 AND e.links_seq <= $5 \
         AND num_nonnulls(e.session_id, e.anonymous_id, e.user_id) >= 2 \
         THEN ARRAY[e.user_id, e.anonymous_id, e.session_id] END";

/// The ids present among (user, anonymous, session), typed, in that order: the journey key's
/// first.
fn typed_ids([user, anonymous, session]: [Option<&str>; 3]) -> Vec<String> {
    [
        (IdKind::User, user),
        (IdKind::Anonymous, anonymous),
        (IdKind::Session, session),
    ]
    .into_iter()
    .filter_map(|(kind, raw)| raw.map(|r| kind.id(r)))
    .collect()
}

/// One link to fold: the ids named together, typed, the journey key's first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Link {
    seq: i64,
    ids: Vec<String>,
    at: DateTime<Utc>,
}

impl Link {
    /// A link from its untyped ids (user, anonymous, session); `None` when fewer than two.
    fn new(
        seq: i64,
        [user, anonymous, session]: [Option<String>; 3],
        at: DateTime<Utc>,
    ) -> Option<Self> {
        let ids = typed_ids([user.as_deref(), anonymous.as_deref(), session.as_deref()]);
        (ids.len() >= 2).then_some(Self { seq, ids, at })
    }

    /// The link of an event row read with [`NEW_LINK`]'s two columns, if it carries a new one.
    pub(crate) fn from_event(
        seq: Option<i64>,
        ids: Option<Vec<Option<String>>>,
        at: DateTime<Utc>,
    ) -> Option<Self> {
        let mut ids = ids?.into_iter();
        Self::new(seq?, [ids.next()?, ids.next()?, ids.next()?], at)
    }
}

/// Folds `event_links` (what the window's events carry that it has not folded yet, from
/// [`NEW_LINK`]) and the explicit links up to the horizon that no fold took yet, in link order
/// (number, then ids), then moves the window's mark to the horizon. The caller holds the
/// tenant's recompute lock, so folds of one tenant never run at once.
///
/// A window folds the links of its own events: each accepted event schedules its day's
/// recompute, so every event's links are folded by one run at least, and a merge schedules the
/// other days it changes. Folding a link twice (windows whose spans overlap at their edges, a new
/// model version's rows) finds its ids in one shopper already and changes nothing.
pub(crate) async fn fold(
    conn: &mut PgConnection,
    tenant: TenantId,
    stitching: Stitching,
    event_links: Vec<Link>,
) -> Result<Fold, StoreError> {
    let mut links = explicit_links(conn, tenant, stitching.horizon).await?;
    links.extend(event_links);
    // Events of one session repeat its link; the first (lowest number, earliest) stands for all.
    links.sort_unstable_by(|a, b| (&a.ids, a.seq, a.at).cmp(&(&b.ids, b.seq, b.at)));
    links.dedup_by(|later, first| later.ids == first.ids);
    links.sort_unstable();
    sqlx::query("UPDATE attribution_recompute_jobs SET links_folded_through = $2 WHERE id = $1")
        .bind(stitching.recompute_id)
        .bind(stitching.horizon)
        .execute(&mut *conn)
        .await?;
    if links.is_empty() {
        return Ok(Fold::default());
    }
    let named: Vec<&str> = links
        .iter()
        .flat_map(|l| l.ids.iter().map(String::as_str))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let stored: Vec<(String, String)> = sqlx::query_as(
        "SELECT identity, component FROM identity_members
         WHERE tenant_id = $1 AND component IN (
             SELECT component FROM identity_members WHERE tenant_id = $1 AND identity = ANY ($2))",
    )
    .bind(tenant)
    .bind(&named)
    .fetch_all(&mut *conn)
    .await?;
    let mut graph = Components::from_rows(stored);
    let max = usize::try_from(stitching.max_ids).unwrap_or(usize::MAX);
    let mut merged = BTreeSet::new();
    let mut refused = Refused::default();
    for Link { seq, ids, at } in &links {
        // The first id (the journey key's) links to each other one.
        for other in &ids[1..] {
            match graph.link(&ids[0], other, max) {
                LinkOutcome::Same => {}
                LinkOutcome::Merged { component } => {
                    merged.insert(component);
                }
                LinkOutcome::Refused { sizes } => refused.push(*seq, (&ids[0], other), sizes, *at),
            }
        }
    }
    // A shopper merged early in the fold may have been merged again under another name.
    let merged: Vec<String> = merged
        .iter()
        .map(|c| graph.component(c).to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (ids, components): (Vec<&str>, Vec<&str>) = graph.changed().unzip();
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO identity_members (tenant_id, identity, component)
             SELECT $1, * FROM unnest($2::text[], $3::text[])
             ON CONFLICT (tenant_id, identity) DO UPDATE SET component = EXCLUDED.component",
        )
        .bind(tenant)
        .bind(&ids)
        .bind(&components)
        .execute(&mut *conn)
        .await?;
    }
    refused.insert(conn, tenant, stitching.max_ids).await?;
    Ok(Fold {
        links: links.len(),
        merged,
        refused: refused.seq.len(),
    })
}

/// The `identity_links` rows (explicit links, and the event links that migration 0100 wrote)
/// numbered up to `horizon` that no fold took yet; moves the tenant's mark to the horizon.
async fn explicit_links(
    conn: &mut PgConnection,
    tenant: TenantId,
    horizon: i64,
) -> Result<Vec<Link>, StoreError> {
    let mark: i64 = sqlx::query_scalar(
        "SELECT COALESCE((SELECT folded_through FROM identity_fold_marks WHERE tenant_id = $1), 0)",
    )
    .bind(tenant)
    .fetch_one(&mut *conn)
    .await?;
    if horizon <= mark {
        return Ok(Vec::new());
    }
    let rows: Vec<StoredLink> = sqlx::query_as(
        "SELECT seq, user_id, anonymous_id, session_id, occurred_at FROM identity_links
         WHERE tenant_id = $1 AND seq > $2 AND seq <= $3",
    )
    .bind(tenant)
    .bind(mark)
    .bind(horizon)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO identity_fold_marks (tenant_id, folded_through) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET folded_through = EXCLUDED.folded_through,
             updated_at = now()",
    )
    .bind(tenant)
    .bind(horizon)
    .execute(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|l| {
            Link::new(
                l.seq,
                [l.user_id, l.anonymous_id, l.session_id],
                l.occurred_at,
            )
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct StoredLink {
    seq: i64,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    session_id: Option<String>,
    occurred_at: DateTime<Utc>,
}

/// Refused links, as columns for one insert.
#[derive(Default)]
struct Refused {
    seq: Vec<i64>,
    identity: Vec<String>,
    other: Vec<String>,
    sizes: (Vec<i32>, Vec<i32>),
    at: Vec<DateTime<Utc>>,
}

impl Refused {
    fn push(&mut self, seq: i64, (a, b): (&str, &str), sizes: (usize, usize), at: DateTime<Utc>) {
        self.seq.push(seq);
        self.identity.push(a.to_owned());
        self.other.push(b.to_owned());
        let size = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        self.sizes.0.push(size(sizes.0));
        self.sizes.1.push(size(sizes.1));
        self.at.push(at);
    }

    async fn insert(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        max_ids: i32,
    ) -> Result<(), StoreError> {
        if self.seq.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO identity_rejected_links (tenant_id, link_seq, identity, other_identity,
                 component_ids, other_ids, occurred_at, max_ids)
             SELECT $1, u.*, $8 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::int[],
                 $6::int[], $7::timestamptz[]) AS u
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(&self.seq)
        .bind(&self.identity)
        .bind(&self.other)
        .bind(&self.sizes.0)
        .bind(&self.sizes.1)
        .bind(&self.at)
        .bind(max_ids)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Schedules the recompute of every tenant day (in `time_zone`) that holds a conversion of the
/// `merged` shoppers, except `running` (the window whose run folded them and reads them next).
pub async fn schedule_merged(
    conn: &mut PgConnection,
    tenant: TenantId,
    merged: &[String],
    time_zone: &str,
    running: (DateTime<Utc>, DateTime<Utc>),
    correlation_id: &str,
) -> Result<Vec<RecomputeJob>, StoreError> {
    if merged.is_empty() {
        return Ok(Vec::new());
    }
    let windows: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH days AS (
             SELECT DISTINCT (e.occurred_at AT TIME ZONE $3)::date AS day
             FROM identity_members m
             JOIN attribution_events e ON e.tenant_id = $1 AND e.kind = 'conversion'
                  AND COALESCE(e.user_id, e.anonymous_id, e.session_id) = substr(m.identity, 3)
                  AND {FIRST_ID} = m.identity
             WHERE m.tenant_id = $1 AND m.component = ANY ($2))
         SELECT day::timestamp AT TIME ZONE $3, (day + 1)::timestamp AT TIME ZONE $3
         FROM days ORDER BY 1"
        )))
        .bind(tenant)
        .bind(merged)
        .bind(time_zone)
        .fetch_all(&mut *conn)
        .await?;
    let windows: Vec<_> = windows.into_iter().filter(|w| *w != running).collect();
    recompute::schedule_windows(
        conn,
        tenant,
        &windows,
        tally_attribution::MODEL_VERSION,
        correlation_id,
    )
    .await
}

/// A link named by `POST /v1/identify`.
#[derive(Debug, Clone)]
pub struct Identify {
    pub anonymous_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// What `POST /v1/identify` recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IdentifyOutcome {
    /// `linked`: a new link, folded by the next recompute; `known`: these ids were linked
    /// together before (by an earlier call, or they belong to one shopper already), nothing was
    /// written.
    pub status: &'static str,
    pub anonymous_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl Database {
    /// Records an explicit link and schedules the recompute of its day (whose run folds it, and
    /// schedules the days whose journeys it changes), as ingestion does for an event.
    pub async fn identify(
        &self,
        tenant: TenantId,
        link: Identify,
        correlation_id: &str,
    ) -> Result<IdentifyOutcome, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        // Before the insert draws from the links sequence: the fold's horizon relies on it.
        recompute::hold_ingest_lock(&mut tx, tenant).await?;
        let typed = typed_ids([
            Some(&link.user_id),
            Some(&link.anonymous_id),
            link.session_id.as_deref(),
        ]);
        let one_shopper: bool = sqlx::query_scalar(
            "SELECT count(*) = $3 AND count(DISTINCT component) = 1 FROM identity_members
             WHERE tenant_id = $1 AND identity = ANY ($2)",
        )
        .bind(tenant)
        .bind(&typed)
        .bind(typed.len() as i64)
        .fetch_one(&mut *tx)
        .await?;
        let written = if one_shopper {
            0
        } else {
            sqlx::query(
            "INSERT INTO identity_links (tenant_id, session_id, anonymous_id, user_id, occurred_at, source)
             VALUES ($1, $2, $3, $4, $5, 'identify')
             ON CONFLICT ON CONSTRAINT identity_links_triple DO NOTHING",
        )
        .bind(tenant)
        .bind(&link.session_id)
        .bind(&link.anonymous_id)
        .bind(&link.user_id)
        .bind(link.occurred_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        };
        if written > 0 {
            recompute::schedule_for_events(&mut tx, tenant, &[link.occurred_at], correlation_id)
                .await?;
        }
        tx.commit().await?;
        Ok(IdentifyOutcome {
            status: if written > 0 { "linked" } else { "known" },
            anonymous_id: link.anonymous_id,
            user_id: link.user_id,
            session_id: link.session_id,
            occurred_at: link.occurred_at,
        })
    }

    /// The links the component cap refused, newest first.
    pub async fn rejected_links(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> Result<Vec<RejectedLink>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(
            "SELECT identity, other_identity, component_ids, other_ids, max_ids, occurred_at,
                    rejected_at
             FROM identity_rejected_links
             ORDER BY rejected_at DESC, link_seq DESC, identity, other_identity LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// A link the component cap refused. Ids are typed: `s:` session, `a:` anonymous, `u:` user.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RejectedLink {
    #[schema(example = "u:kiosk-1")]
    pub identity: String,
    #[schema(example = "a:7f3c")]
    pub other_identity: String,
    /// Ids of `identity`'s shopper when the link came.
    pub component_ids: i32,
    /// Ids of `other_identity`'s shopper.
    pub other_ids: i32,
    /// The tenant's `identity_max_component_ids` then.
    pub max_ids: i32,
    /// When the event (or identify call) that carried the link happened.
    pub occurred_at: DateTime<Utc>,
    pub rejected_at: DateTime<Utc>,
}
