/** @jsxImportSource hono/jsx */
// The status page, rendered on the server from what the monitor object holds: each
// host's conditions and files, a week of incidents, the history, today's usage and the
// monitor's own health. No client build and no script: it refreshes itself every 30 s
// with a meta tag and is laid out for a phone first.
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { computeBudget, QUOTAS, type Resource } from "../budget.ts";
import type { Config, HostConfig } from "../config.ts";
import { formatSeconds } from "../format.ts";
import { type ConditionKind, incidentId, pagedKinds } from "../judge/judge.ts";
import { maintenanceSpans } from "../judge/maintenance.ts";
import { clockSkewSeconds, heartbeatAgeSeconds } from "../judge/records.ts";
import type { MonitorView } from "../monitor/object.ts";
import type { HistoryEvent, HostState } from "../monitor/state.ts";
import { CONDITION_LABEL } from "../phone/messages.ts";
import { STYLE } from "./style.ts";
import { type DrawnSpan, hostSpans, type Lane, mergeForDrawing } from "./timeline.ts";

export const REFRESH_SECONDS = 30;
/** The timeline's reach, and the events the page reads. */
export const TIMELINE_DAYS = 7;
const DAY_MS = 86_400_000;
/** Events the log lists; all 30 days are in the CSV. */
const LOG_ROWS = 100;

export interface DashboardInput {
  config: Config;
  view: MonitorView & { events: HistoryEvent[] };
}


/** The input with each host's events found once (a week of history is read once per host otherwise). */
interface PageContext extends DashboardInput {
  eventsOf: (hostId: string) => readonly HistoryEvent[];
}

function withEventsByHost(input: DashboardInput): PageContext {
  const byHost = new Map<string, HistoryEvent[]>();
  for (const event of input.view.events) {
    if (event.hostId === null) continue;
    const list = byHost.get(event.hostId);
    if (list === undefined) byHost.set(event.hostId, [event]);
    else list.push(event);
  }
  return { ...input, eventsOf: (hostId) => byHost.get(hostId) ?? [] };
}

const LANE_LABEL: Record<Lane, string> = { dark: "dark", stale: "stale", failing: "failing", tripped: "tripped", other: "unreadable or skewed" };

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** Every zone's offset changes only on a quarter hour (of UTC), and at most once a day. */
const QUARTER_HOUR_MS = 900_000;
const DAY_OF_MS = 86_400_000;
const zoneParts = new Map<string, Intl.DateTimeFormat>();
const offsets = new Map<string, { offsetMs: number; name: string }>();

function lookUpZone(zone: string, at: number): { offsetMs: number; name: string } {
  let format = zoneParts.get(zone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", { timeZone: zone, year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", hourCycle: "h23", timeZoneName: "short" });
    zoneParts.set(zone, format);
  }
  const parts = new Map(format.formatToParts(new Date(at)).map((part) => [part.type, part.value]));
  const wall = Date.UTC(Number(parts.get("year")), Number(parts.get("month")) - 1, Number(parts.get("day")), Number(parts.get("hour")), Number(parts.get("minute")));
  return { offsetMs: wall - at, name: parts.get("timeZoneName") ?? zone };
}

/**
 * A zone's offset and short name at a moment. Intl formatting with a zone name costs
 * microseconds a call, and a page formats a thousand moments within the Worker's CPU
 * limit: a UTC day whose two ends agree is looked up twice in all; the day of a DST
 * change, once a quarter hour.
 */
function zoneAt(zone: string, ms: number): { offsetMs: number; name: string } {
  const day = Math.floor(ms / DAY_OF_MS) * DAY_OF_MS;
  const dayKey = `${zone}|d${day}`;
  let whole = offsets.get(dayKey);
  if (whole === undefined) {
    const start = lookUpZone(zone, day);
    const end = lookUpZone(zone, day + DAY_OF_MS - QUARTER_HOUR_MS);
    whole = start.offsetMs === end.offsetMs && start.name === end.name ? start : { offsetMs: Number.NaN, name: "" };
    if (offsets.size > 10_000) offsets.clear();
    offsets.set(dayKey, whole);
  }
  if (!Number.isNaN(whole.offsetMs)) return whole;
  const bucket = Math.floor(ms / QUARTER_HOUR_MS) * QUARTER_HOUR_MS;
  const key = `${zone}|q${bucket}`;
  let found = offsets.get(key);
  if (found === undefined) {
    found = lookUpZone(zone, bucket);
    offsets.set(key, found);
  }
  return found;
}

/** A moment in the operator's zone (alerts.timezone), as the chat's reminders are: "2 Dec, 05:47 UTC". */
function clock(ms: number, zone: string, withDate = true): string {
  const { offsetMs, name } = zoneAt(zone, ms);
  const local = new Date(ms + offsetMs);
  const time = `${String(local.getUTCHours()).padStart(2, "0")}:${String(local.getUTCMinutes()).padStart(2, "0")} ${name}`;
  return withDate ? `${local.getUTCDate()} ${MONTHS[local.getUTCMonth()] ?? "?"}, ${time}` : time;
}

/** One decimal, and never "-0.0": a skew that rounds to nothing is 0.0. */
function tenths(value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return (rounded === 0 ? 0 : rounded).toFixed(1);
}

function ago(ms: number, now: number): string {
  return `${formatSeconds((now - ms) / 1000)} ago`;
}

const Layout: FC<PropsWithChildren<{ title: string; refresh: boolean }>> = ({ title, refresh, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="robots" content="noindex" />
      {refresh ? <meta http-equiv="refresh" content={String(REFRESH_SECONDS)} /> : null}
      <title>{title}</title>
      <style dangerouslySetInnerHTML={{ __html: STYLE }} />
    </head>
    <body>{children}</body>
  </html>
);

/** The only thing a visitor without a session sees. */
export function renderSignIn(message: string | null): string {
  return (
    "<!doctype html>" +
    (
      <Layout title="witness: sign in" refresh={false}>
        <main class="narrow">
          <h1>witness</h1>
          <p>Sign in with the Worker's STATUS_TOKEN, or open the link in the bot's /status reply.</p>
          {message === null ? null : (
            <p class="error" role="alert">
              {message}
            </p>
          )}
          <form method="post" action="/status/sign-in">
            <label for="token">Status token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required />
            <button type="submit">Sign in</button>
          </form>
        </main>
      </Layout>
    ).toString()
  );
}

export function renderDashboard(input: DashboardInput): string {
  const { config, view } = input;
  const context = withEventsByHost(input);
  const now = view.now;
  const zone = config.alerts.timezone;
  const byId = new Map(view.hosts.map((state) => [state.hostId, state]));
  const troubled = config.hosts.filter((host) => {
    const state = byId.get(host.id);
    return state !== undefined && pagedKinds(state.judgement).length > 0;
  });
  const summary = troubled.length === 0 ? `all ${config.hosts.length} host(s) ok` : `${troubled.length} of ${config.hosts.length} host(s) need attention`;
  return (
    "<!doctype html>" +
    (
      <Layout title={`${troubled.length === 0 ? "ok" : `${troubled.length} down`} · witness`} refresh={true}>
        <header>
          <h1>witness</h1>
          <p class={troubled.length === 0 ? "summary ok" : "summary bad"} data-summary={troubled.length === 0 ? "ok" : "trouble"}>
            {summary}
          </p>
          <div class="muted bar">
            <span>
              Updated {clock(now, zone)}; refreshes every {`${REFRESH_SECONDS}\u00a0s`}.
            </span>
            <form method="post" action="/status/sign-out">
              <button type="submit" class="link">
                Sign out
              </button>
            </form>
          </div>
        </header>
        <main>
          <section aria-label="hosts">
            {config.hosts.map((host) => (
              <HostCard host={host} state={byId.get(host.id)} input={context} />
            ))}
          </section>
          <Legend />
          <MonitorHealth input={input} />
          <UsageTable input={input} />
          <EventLog input={input} />
        </main>
      </Layout>
    ).toString()
  );
}

function hostStatus(state: HostState | undefined): { word: string; css: string; kinds: string[] } {
  const conditions = Object.entries(state?.judgement.conditions ?? {}).filter(([, condition]) => condition !== undefined);
  const paged = state === undefined ? [] : pagedKinds(state.judgement);
  if (state?.record === null && conditions.length === 0) return { word: "waiting for first ping", css: "wait", kinds: [] };
  const held = conditions.filter(([, condition]) => condition?.heldUntil !== undefined).map(([kind]) => kind as ConditionKind);
  if (paged.length === 0 && held.length > 0) return { word: `in maintenance: ${held.map((kind) => CONDITION_LABEL[kind]).join(", ")}`, css: "wait", kinds: [] };
  if (paged.length === 0) return { word: conditions.length === 0 ? "ok" : "ok (checking)", css: "ok", kinds: [] };
  return { word: paged.map((kind) => CONDITION_LABEL[kind]).join(", "), css: paged.includes("tripped") && paged.length === 1 ? "paused" : "bad", kinds: paged };
}

const HostCard: FC<{ host: HostConfig; state: HostState | undefined; input: PageContext }> = ({ host, state, input }) => {
  const now = input.view.now;
  const zone = input.config.alerts.timezone;
  const record = state?.record ?? null;
  const status = hostStatus(state);
  const conditions = Object.entries(state?.judgement.conditions ?? {});
  const mutedUntil = state?.operator.mutedUntil ?? null;
  return (
    <article class={`host ${status.css}`} data-host={host.id} data-state={status.css} data-conditions={status.kinds.join(" ")}>
      <h2>
        <span class="dot" aria-hidden="true" />
        {host.name !== host.id ? `${host.name} (${host.id})` : host.id}
        <span class="state">{status.word}</span>
      </h2>
      {conditions.length === 0 ? null : (
        <ul class="conditions">
          {conditions.map(([kind, condition]) =>
            condition === undefined ? null : (
              <li>
                <b>{CONDITION_LABEL[kind as ConditionKind] ?? kind}</b> since {clock(condition.openedAt, zone)} ({ago(condition.openedAt, now)})
                {condition.heldUntil !== undefined
                  ? ` · held by maintenance until ${clock(condition.heldUntil, zone)}`
                  : condition.pagedAt === null
                    ? " · not paged yet (confirming)"
                    : ""}
                {condition.clearSeen !== undefined ? " · clearing (confirming the recovery)" : ""}
                {state?.operator.acked.some((ack) => ack.incidentId === incidentId(host.id, kind as ConditionKind, condition.openedAt)) ? " · acknowledged" : ""}:{" "}
                {condition.detail}
              </li>
            ),
          )}
        </ul>
      )}
      <dl>
        <dt>Last ping</dt>
        <dd>{record === null ? "never" : `${clock(record.receivedAt, zone)} (${ago(record.receivedAt, now)}); every ${host.intervalSeconds} s, dark after ${formatSeconds(host.darkAfterSeconds)}`}</dd>
        <dt>Heartbeat</dt>
        <dd>{heartbeatText(state, now)}</dd>
        <dt>Circuit</dt>
        <dd>{circuitText(state, zone)}</dd>
        <dt>Clock skew</dt>
        <dd>{record === null ? "unknown" : `${tenths(clockSkewSeconds(record))} s (limit ${host.skewSeconds} s)`}</dd>
        <dt>Agent</dt>
        <dd>
          {record === null
            ? "not heard yet"
            : `${record.agent.kind ?? "node"} ${record.agent.version}, started ${clock(record.agent.startedAt, zone)}, boot ${record.agent.bootId.slice(0, 8)}`}
        </dd>
        {mutedUntil !== null && mutedUntil > now ? (
          <>
            <dt>Muted</dt>
            <dd>
              until {clock(mutedUntil, zone)}
              {state?.operator.mutedBy ? ` by ${state.operator.mutedBy}` : ""}
            </dd>
          </>
        ) : null}
      </dl>
      <Timeline host={host} state={state} input={input} />
    </article>
  );
};

function heartbeatText(state: HostState | undefined, now: number): string {
  const record = state?.record ?? null;
  if (record === null) return "unknown";
  const heartbeat = record.heartbeat;
  if (heartbeat.state !== "ok") return `${heartbeat.state.replace("_", " ")}: ${heartbeat.detail}`;
  const age = heartbeatAgeSeconds(record, now);
  return `status "${heartbeat.status}", ${age === null ? "age unknown" : `${formatSeconds(age)} old`} on the host's clock${heartbeat.extra ? `; ${heartbeat.extra}` : ""}`;
}

function circuitText(state: HostState | undefined, zone: string): string {
  const circuit = state?.record?.circuit;
  if (circuit === undefined) return "unknown";
  if (circuit.state === "missing") return "no circuit.json (green)";
  if (circuit.state !== "ok") return `${circuit.state.replace("_", " ")}: ${circuit.detail}`;
  if (!circuit.paused) return "green (paused: false)";
  const since = circuit.since === undefined ? null : circuit.since * 1000;
  const sinceText = since !== null && Number.isFinite(new Date(since).getTime()) ? ` since ${clock(since, zone)}` : "";
  return `PAUSED: ${circuit.reason ?? "(no reason given)"}${sinceText}`;
}

/** A week as one bar: incidents coloured by kind, maintenance hatched, a tick a day. */
const Timeline: FC<{ host: HostConfig; state: HostState | undefined; input: PageContext }> = ({ host, state, input }) => {
  const to = input.view.now;
  const from = to - TIMELINE_DAYS * DAY_MS;
  const width = 700;
  const x = (at: number) => ((at - from) / (to - from)) * width;
  const spans = hostSpans(host.id, input.eventsOf(host.id), state, from, to);
  // The host's configured windows and those set from the phone.
  const windows = maintenanceSpans(host, input.config, state?.operator ?? { maintenance: [] }, from, to);
  const zone = input.config.alerts.timezone;
  const ticks = Array.from({ length: TIMELINE_DAYS }, (_, index) => to - (index + 1) * DAY_MS);
  const totals = new Map<Lane, number>();
  for (const span of spans) totals.set(span.lane, (totals.get(span.lane) ?? 0) + span.to - span.from);
  const label =
    spans.length === 0
      ? `${host.id}: no incidents in the last ${TIMELINE_DAYS} days`
      : `${host.id}, last ${TIMELINE_DAYS} days: ${[...totals].map(([lane, ms]) => `${LANE_LABEL[lane]} ${formatSeconds(ms / 1000)}`).join(", ")}`;
  return (
    <figure class="timeline">
      <svg viewBox={`0 0 ${width} 34`} preserveAspectRatio="none" role="img" aria-label={label} data-spans={String(spans.length)}>
        <title>{label}</title>
        <rect x="0" y="0" width={String(width)} height="24" class="track" />
        {windows.map((window) => (
          <rect x={fixed(x(Math.max(window.from, from)))} y="0" width={fixed(Math.max(1, x(Math.min(window.to, to)) - x(Math.max(window.from, from))))} height="24" class="maintenance">
            <title>{`maintenance ${clock(window.from, zone)} to ${clock(window.to, zone)}${window.by ? ` (${window.by})` : ""}`}</title>
          </rect>
        ))}
        {mergeForDrawing(spans, (to - from) / width).map((span) => (
          <SpanRect span={span} x={x} barWidth={width} zone={zone} />
        ))}
        {ticks.map((at) => (
          <line x1={fixed(x(at))} x2={fixed(x(at))} y1="24" y2="30" class="tick" />
        ))}
      </svg>
      <figcaption>
        <span>{clock(from, zone, true).replace(/,? \d\d:\d\d.*/, "")}</span>
        <span>now</span>
      </figcaption>
    </figure>
  );
};

/** The narrowest span drawn, in viewBox units (a week is 700): a few pixels even on a phone. */
const MIN_SPAN_WIDTH = 4;

/**
 * A span at least MIN_SPAN_WIDTH wide, kept inside the bar: a short incident that just
 * happened would otherwise start at the right edge and be clipped to nothing.
 */
const SpanRect: FC<{ span: DrawnSpan; x: (at: number) => number; barWidth: number; zone: string }> = ({ span, x, barWidth, zone }) => {
  const width = Math.max(MIN_SPAN_WIDTH, x(span.to) - x(span.from));
  const left = Math.max(0, Math.min(x(span.from), barWidth - width));
  const end = span.open ? "now" : clock(span.to, zone);
  const title =
    span.count === 1
      ? `${span.kind} ${clock(span.from, zone)} to ${end} (${formatSeconds(span.totalMs / 1000)})`
      : `${LANE_LABEL[span.lane]}: ${span.count} incidents, ${formatSeconds(span.totalMs / 1000)} in all, ${clock(span.from, zone)} to ${end}`;
  return (
    <rect x={fixed(left)} y="2" width={fixed(width)} height="20" class={`span ${span.lane}`} data-lane={span.lane}>
      <title>{title}</title>
    </rect>
  );
};

function fixed(value: number): string {
  return value.toFixed(1);
}

const Legend: FC = () => (
  <p class="legend" aria-label="timeline legend">
    {(Object.keys(LANE_LABEL) as Lane[]).map((lane) => (
      <span>
        <i class={`swatch ${lane}`} />
        {LANE_LABEL[lane]}
      </span>
    ))}
    <span>
      <i class="swatch maintenance" />
      maintenance
    </span>
  </p>
);

const MonitorHealth: FC<{ input: DashboardInput }> = ({ input }) => {
  const { view, config } = input;
  const now = view.now;
  const zone = config.alerts.timezone;
  const telegram = view.meta.telegram;
  const cronLate = view.meta.lastCronAt === null || now - view.meta.lastCronAt > 3 * config.timing.cronPeriodSeconds * 1000;
  const delivery =
    telegram.permanentError !== null
      ? `pages cannot be delivered: ${telegram.permanentError}`
      : telegram.failingSince !== null
        ? `failing since ${clock(telegram.failingSince, zone)} (${ago(telegram.failingSince, now)}), ${view.outbox.length} waiting`
        : view.outbox.length > 0
          ? `${view.outbox.length} page(s) waiting`
          : telegram.lastDeliveredAt === null
            ? "nothing sent yet"
            : `ok; last delivered ${clock(telegram.lastDeliveredAt, zone)}`;
  return (
    <section class="card" aria-labelledby="monitor-heading">
      <h2 id="monitor-heading">Monitor</h2>
      <dl>
        <dt>Cron</dt>
        <dd class={cronLate ? "bad-text" : ""}>{view.meta.lastCronAt === null ? "has not run yet" : `last ran ${ago(view.meta.lastCronAt, now)}`}</dd>
        <dt>Alarm</dt>
        <dd>{view.alarmAt === null ? "none armed (nothing due)" : `armed for ${clock(view.alarmAt, zone)}`}</dd>
        <dt>Telegram</dt>
        <dd class={telegram.permanentError !== null || telegram.failingSince !== null ? "bad-text" : ""} data-telegram={telegram.permanentError === null ? "ok" : "failed"}>
          {delivery}
        </dd>
        <dt>Listening</dt>
        <dd>since {clock(view.meta.listeningSince, zone)}</dd>
      </dl>
    </section>
  );
};

const USAGE_ROWS: { resource: Resource; label: string; counted: (usage: NonNullable<MonitorView["meta"]["usage"]>) => number }[] = [
  { resource: "doRequests", label: "Durable Object requests", counted: (usage) => usage.requests },
  { resource: "rowsWritten", label: "SQLite rows written", counted: (usage) => usage.rowsWritten },
  { resource: "rowsRead", label: "SQLite rows read", counted: (usage) => usage.rowsRead },
  { resource: "kvWrites", label: "KV writes (snapshot)", counted: (usage) => usage.kvWrites },
];

const UsageTable: FC<{ input: DashboardInput }> = ({ input }) => {
  const { config, view } = input;
  const usage = view.meta.usage;
  const quota = QUOTAS[config.plan];
  const predicted = computeBudget(config).total;
  const today = new Date(view.now).toISOString().slice(0, 10);
  const counted = usage !== null && usage.date === today ? usage : null;
  return (
    <section class="card" aria-labelledby="usage-heading">
      <h2 id="usage-heading">Usage today (UTC)</h2>
      <p class="muted">
        Counted by the monitor since 00:00 UTC, against the {config.plan} plan's {config.plan === "free" ? "daily quota" : "included usage per day"}; predicted is for
        this configuration on a healthy day (npm run check-config).
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Resource</th>
            <th scope="col">Today</th>
            <th scope="col">Predicted</th>
            <th scope="col">Quota</th>
          </tr>
        </thead>
        <tbody>
          {USAGE_ROWS.map((row) => {
            const value = counted === null ? 0 : row.counted(counted);
            const share = value / quota[row.resource];
            return (
              <tr data-resource={row.resource}>
                <th scope="row">{row.label}</th>
                <td class={share >= 0.8 ? "bad-text" : ""}>
                  {value.toLocaleString("en-US")} <small>({(share * 100).toFixed(share < 0.1 ? 2 : 0)} %)</small>
                </td>
                <td>{Math.round(predicted[row.resource]).toLocaleString("en-US")}</td>
                <td>{Math.round(quota[row.resource]).toLocaleString("en-US")}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
};

const EVENT_WORDS: Record<string, string> = {
  alert: "paged",
  repeat: "paged again",
  reminder: "reminded",
  recovery: "recovered",
  held: "held (maintenance)",
  silenced: "silenced (muted)",
  cleared: "cleared unsent",
  ack: "acknowledged",
  mute: "muted",
  unmute: "unmuted",
  maintenance: "maintenance",
  maintenance_end: "maintenance ended",
  pause_requested: "pause requested",
  pause_confirmed: "pause confirmed",
  pause_cancelled: "pause cancelled",
  pause_refused: "pause refused",
  dropped: "messages dropped",
  chat_migrated: "chat migrated",
};

const EventLog: FC<{ input: DashboardInput }> = ({ input }) => {
  const { view, config } = input;
  const zone = config.alerts.timezone;
  const rows = [...view.events].reverse().slice(0, LOG_ROWS);
  const since = view.now - 30 * DAY_MS;
  let body: Child;
  if (rows.length === 0) body = <p class="muted">Nothing happened in the last {TIMELINE_DAYS} days.</p>;
  else
    body = (
      <ol class="log">
        {rows.map((event) => (
          <li data-type={event.type}>
            <time datetime={new Date(event.at).toISOString()}>{clock(event.at, zone)}</time>{" "}
            <b>{event.hostId ?? "witness"}</b> {EVENT_WORDS[event.type] ?? event.type}
            {event.kind === null ? "" : ` ${CONDITION_LABEL[event.kind as ConditionKind] ?? event.kind}`}
            {event.by === null ? "" : ` by ${event.by}`}
            {event.detail === "" ? "" : <span class="detail">{event.detail}</span>}
          </li>
        ))}
      </ol>
    );
  return (
    <section class="card" aria-labelledby="log-heading">
      <h2 id="log-heading">History</h2>
      <p class="muted">
        The last {TIMELINE_DAYS} days, newest first (at most {LOG_ROWS}). All 30 days: <a href={`/v1/events.csv?since=${since}`}>CSV</a>,{" "}
        <a href={`/v1/events?since=${since}`}>JSON</a>.
      </p>
      {body}
    </section>
  );
};
