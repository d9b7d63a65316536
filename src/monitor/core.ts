// The monitor: the single writer of all judgement state. It accepts pings (already
// authenticated and validated at the edge), judges a host the moment something is due,
// queues and delivers pages, answers the phone, and publishes a snapshot for readers.
// Every run decides and records in one transaction before it sends, then records the
// delivery, so an alarm that runs twice or late never pages twice.
//
// Plain TypeScript over injected storage, clock, fetch and alarm, so the Durable Object
// (object.ts) is a thin shell and Node can run the same code (simulator, bench).
import { localDay, nextLocalTime } from "../judge/calendar.ts";
import type { Config, HostConfig } from "../config.ts";
import { findHost } from "../config.ts";
import { errorMessage, formatSeconds } from "../format.ts";
import { type AlertEvent, isProblem, isSent, pagedKinds } from "../judge/judge.ts";
import { escapeHtml, renderConfigError } from "../phone/messages.ts";
import { planHost, planMessages, planNotices, type PlannedMessage } from "../judge/plan.ts";
import type { PauseCommand, PingBody } from "../protocol.ts";
import { activeMaintenance } from "../judge/maintenance.ts";
import { recordFromPing } from "../judge/records.ts";
import { hostDueAt } from "../judge/schedule.ts";
import { type CallResult, type Fetch, isChatProblem, plainText, TelegramClient } from "../phone/telegram.ts";
import { emptyHostState, MonitorStorage, publishSnapshot, type SnapshotKv } from "./storage.ts";
import { type AgentSeen, type DailyUsage, type HostState, type MonitorMeta, newMonitorMeta, type OutboxMessage, type Snapshot } from "./state.ts";

/** Hosts due within this of each other are judged in one run, so they share one page. */
export const BATCH_MS = 1000;
/** A monitor that ran for nothing at all this long was unreachable (its cron runs each minute). */
const DEAF_AFTER_CRON_PERIODS = 3;
/** Undelivered pages kept at most; past this the oldest are dropped (and that is said). */
const MAX_OUTBOX = 50;
/** Longest wait between retries of a page Telegram refused (unless it names its own retry_after). */
const MAX_RETRY_BACKOFF_MS = 30_000;
/** Telegram calls one run may make (they count against the subrequest limit). */
const MAX_SENDS_PER_RUN = 20;
/** Agent processes remembered per host for the replay rule. */
const MAX_AGENTS_SEEN = 8;
/** Any two accepted pings of a host this close together: the second is a misconfigured agent. */
const MIN_PING_GAP_MS = 1000;
const DAY_MS = 86_400_000;

export interface AlarmControl {
  get(): Promise<number | null>;
  set(at: number): Promise<void>;
}

export interface MonitorDeps {
  storage: MonitorStorage;
  kv: SnapshotKv;
  fetch: Fetch;
  now: () => number;
  alarm: AlarmControl;
  /** Runs `body` as one SQLite transaction (transactionSync in the Durable Object). */
  transaction: <T>(body: () => T) => T;
  config: Config;
  telegramToken: string;
}

export type PingOutcome =
  | { status: 200; serverTime: number; commands: PauseCommand[] }
  | { status: 401; error: string }
  | { status: 429; error: string; retryAfterSeconds: number };

/** A clock refusal recorded (replay null), or refused as a replay, or too fast. */
export type ClockOutcome = { status: 401; replay: string | null } | { status: 429; error: string; retryAfterSeconds: number };

export interface PingInput {
  hostId: string;
  body: PingBody;
  /** The signed timestamp header (agent clock, Unix ms). */
  sentAt: number;
}

export interface RunReport {
  reason: "alarm" | "cron" | "ping";
  events: number;
  delivered: number;
  undelivered: number;
  alarmAt: number | null;
  /** Pages can be delivered (no permanent Telegram error): the dead-man URL may be pinged. */
  deliveryOk: boolean;
  permanentError: string | null;
}

export class MonitorCore {
  private readonly deps: MonitorDeps;
  private readonly storage: MonitorStorage;
  private hosts = new Map<string, HostState>();
  private meta: MonitorMeta;
  private firstRun = false;
  /** When each host next needs judging (derived, never stored: recomputed on load). */
  private readonly dueAt = new Map<string, number | null>();
  /** Storage's row counters as last folded into today's usage. */
  private rowsCounted = { written: 0, read: 0 };
  /** The alarm as last set or read; null when none is armed. */
  private armedAt: number | null = null;
  /** Whether a run has judged every host since this core was built from storage. */
  private judgedAllSinceStart = false;
  /** The Telegram delivery under way, if any (see deliver). */
  private delivering: Promise<number> | null = null;

  constructor(deps: MonitorDeps) {
    this.deps = deps;
    this.storage = deps.storage;
    this.rowsCounted = { written: this.storage.rowsWritten, read: this.storage.rowsRead };
    const now = deps.now();
    this.storage.migrate();
    const meta = this.storage.loadMeta();
    this.meta = meta ?? newMonitorMeta(now);
    // Written at once: when the monitor started is what a never-pinged host's grace and
    // every silence count from, so it must not move with each restart.
    if (meta === null) this.storage.putMeta(this.meta);
    this.firstRun = this.meta.watchingAnnouncedAt === null;
    this.hosts = this.storage.loadHosts(now);
    const declared = new Set(this.config.hosts.map((host) => host.id));
    this.deps.transaction(() => {
      // A host taken out of the config is gone; adding it back later starts afresh.
      for (const hostId of [...this.hosts.keys()]) {
        if (declared.has(hostId)) continue;
        this.storage.deleteHost(hostId);
        this.hosts.delete(hostId);
      }
      // A host new to the config counts its never-pinged grace from now (the deploy that
      // added it), not from when the monitor first ran; written, so the grace holds.
      for (const host of this.config.hosts) {
        if (this.hosts.has(host.id)) continue;
        const fresh = emptyHostState(host.id, meta === null ? this.meta.createdAt : now);
        this.storage.putHost(fresh);
        this.hosts.set(host.id, fresh);
      }
    });
    // Due times as of when each host was last judged, not as of now: whatever came due
    // while the object was away (a late alarm, a failover) is then already due.
    for (const host of this.config.hosts) {
      const judgedAt = Math.max(this.meta.lastAwakeAt, this.hosts.get(host.id)?.record?.receivedAt ?? 0);
      this.refreshDue(host, Math.min(now, judgedAt));
    }
  }

  private get config(): Config {
    return this.deps.config;
  }

  /** Writes the meta row with today's usage brought up to date. */
  private saveMeta(): void {
    this.usageToday(this.deps.now());
    this.storage.putMeta(this.meta);
  }

  /**
   * Today's usage, with the rows storage counted since the last look folded in. A new
   * UTC day starts from zero, as Cloudflare's daily quotas do.
   */
  private usageToday(now: number): DailyUsage {
    const date = new Date(now).toISOString().slice(0, 10);
    const current = this.meta.usage;
    const usage: DailyUsage =
      current !== null && current.date === date ? { ...current } : { date, requests: 0, alarms: 0, rowsWritten: 0, rowsRead: 0, kvWrites: 0 };
    usage.rowsWritten += this.storage.rowsWritten - this.rowsCounted.written;
    usage.rowsRead += this.storage.rowsRead - this.rowsCounted.read;
    this.rowsCounted = { written: this.storage.rowsWritten, read: this.storage.rowsRead };
    this.meta = { ...this.meta, usage };
    return usage;
  }

  /** Counts one Durable Object request (an RPC call, or an alarm, which Cloudflare bills as one). */
  countRequest(kind: "call" | "alarm"): void {
    const usage = this.usageToday(this.deps.now());
    usage.requests += 1;
    if (kind === "alarm") usage.alarms += 1;
  }

  /** Reads the armed alarm once after start (storage may have one from before an eviction). */
  async start(): Promise<void> {
    this.armedAt = await this.deps.alarm.get();
  }

  // ---- pings ----

  async acceptPing(input: PingInput): Promise<PingOutcome> {
    const now = this.deps.now();
    const host = findHost(this.config, input.hostId);
    if (host === undefined) return { status: 401, error: `unknown host ${input.hostId}` };
    const resumed = this.noticeDeafness(now);
    const previous = this.hostState(host.id);

    const agent = input.body.agent;
    const replay = replayVerdict(previous.agents, agent.bootId, agent.startedAt, input.body.seq);
    if (replay !== null) return { status: 401, error: replay };
    const tooSoon = rateVerdict(previous, host, agent, input.sentAt, now);
    if (tooSoon !== null) return { status: 429, error: tooSoon.error, retryAfterSeconds: tooSoon.retryAfterSeconds };

    const fromPing = recordFromPing(host.id, input.body, input.sentAt, now);
    // The agent reports a command's outcome in one ping only: keep the last outcome, so
    // the command is not handed out again once a later ping has replaced that one.
    const record =
      fromPing.commandResult === undefined && previous.record?.commandResult !== undefined
        ? { ...fromPing, commandResult: previous.record.commandResult }
        : fromPing;
    // A one-shot run beside the service (--check, --once) is evidence the host is up and
    // its files say what they say, but it does not displace the service's identity.
    const oneShot = agent.mode === "once" || agent.mode === "check";
    const service = oneShot && previous.record !== null ? { ...record, agent: previous.record.agent, seq: previous.record.seq } : record;
    const heard = this.heardFrom(previous, input, now);
    // Some host pings about every interval / n: the alarm need only move before then.
    const pinging = [...this.hosts.values()].filter((state) => state.record !== null && now - state.record.receivedAt < 2 * host.intervalSeconds * 1000).length;
    const state = await this.judgePing(host, { ...heard, record: service }, resumed, now, (host.intervalSeconds * 1000) / Math.max(1, pinging));
    return { status: 200, serverTime: now, commands: pendingCommands(state, host) };
  }

  /**
   * A correctly signed ping whose timestamp is outside the replay window: the host is
   * alive, its clock is off. It is paged SKEWED (not DARK), unless it is a replay of an
   * old captured ping: an agent process or boot the monitor has already heard past.
   */
  async refuseForClock(input: PingInput): Promise<ClockOutcome> {
    const now = this.deps.now();
    const host = findHost(this.config, input.hostId);
    if (host === undefined) return { status: 401, replay: `unknown host ${input.hostId}` };
    const resumed = this.noticeDeafness(now);
    const previous = this.hostState(host.id);
    const agent = input.body.agent;
    const current = previous.record?.agent;
    const replay =
      replayVerdict(previous.agents, agent.bootId, agent.startedAt, input.body.seq) ??
      (current !== undefined && agent.bootId === current.bootId && agent.startedAt < current.startedAt
        ? "replayed ping: from an agent process older than the one last heard"
        : null) ??
      (current !== undefined && agent.bootId === current.bootId && agent.startedAt === current.startedAt && input.body.seq <= (previous.record?.seq ?? 0)
        ? `replayed ping: sequence ${input.body.seq} is not after ${previous.record?.seq ?? 0}`
        : null) ??
      (current !== undefined && olderBoot(previous.boots, current.bootId, agent.bootId) ? "replayed ping: from a boot before the host's current one" : null);
    if (replay !== null) return { status: 401, replay };
    const refusedAt = previous.clockRefusal?.at ?? null;
    if (refusedAt !== null && now - refusedAt < (host.intervalSeconds * 1000) / 2) {
      return { status: 429, error: `pinging too fast: ${host.id} pings every ${host.intervalSeconds} s`, retryAfterSeconds: Math.ceil(host.intervalSeconds / 2) };
    }
    const heard = this.heardFrom(previous, input, now);
    await this.judgePing(host, { ...heard, clockRefusal: { at: now, skewSeconds: (input.sentAt - now) / 1000 } }, resumed, now, host.intervalSeconds * 1000);
    return { status: 401, replay: null };
  }

  /** The host's state with this agent process and boot remembered, for the replay rule. */
  private heardFrom(previous: HostState, input: PingInput, now: number): HostState {
    const agent = input.body.agent;
    const seen: AgentSeen = { bootId: agent.bootId, startedAt: agent.startedAt, seq: input.body.seq, lastAt: now, sentAt: input.sentAt, mode: agent.mode ?? "service" };
    return {
      ...previous,
      agents: rememberAgent(previous.agents, seen, now, this.config.timing.replayWindowSeconds * 1000),
      boots: rememberBoot(previous.boots, agent.bootId),
    };
  }

  /**
   * Judges one host on what it just sent, and records the judgement, its messages and
   * its history in one transaction before anything is sent; then moves the alarm if it
   * must (to now when there is something to send).
   */
  private async judgePing(host: HostConfig, next: HostState, resumed: string | null, now: number, nextPingWithinMs: number): Promise<HostState> {
    const plan = planHost(this.config, host, next, "ping", this.meta.listeningSince, now);
    const messages = [...(resumed === null ? [] : [{ text: resumed }]), ...planMessages(this.config, plan.events, plan.notes, new Map([[host.id, plan.state]]))];
    this.deps.transaction(() => {
      this.storage.putHost(plan.state);
      this.enqueue(messages, now);
      this.recordEvents(plan.events, now);
    });
    this.hosts.set(host.id, plan.state);
    this.refreshDue(host, now);
    await this.arm(now, messages.length > 0 ? now : null, nextPingWithinMs);
    return plan.state;
  }

  // ---- alarm and cron ----

  /** Judges every host as of now, queues and delivers what is due, publishes, re-arms. */
  async run(reason: "alarm" | "cron"): Promise<RunReport> {
    const now = this.deps.now();
    let events: AlertEvent[] = [];
    try {
      events = this.judgeAll(reason, now);
      const delivered = await this.deliver(now);
      // What a maintenance window held changes nothing readers see (they see what paged).
      await this.publish(now, events.some(isSent));
      return this.report(reason, events.length, delivered);
    } finally {
      // Re-armed last, even when something above threw: a thrown run is retried by the
      // platform, and an alarm left in the past or missing is what the cron repairs.
      await this.arm(this.deps.now(), null, 0, reason === "alarm");
    }
  }

  private judgeAll(reason: "alarm" | "cron", now: number): AlertEvent[] {
    const resumed = this.noticeDeafness(now);
    const events: AlertEvent[] = [];
    const notes: string[] = [];
    const changed: HostState[] = [];
    const judged: HostConfig[] = [];
    for (const host of this.config.hosts) {
      // An alarm judges the hosts that are due; the cron judges every host, the safety
      // net under a due time computed wrong, and so does the first run after a start
      // (due times computed at a start cannot know what came due before it).
      const dueAt = this.dueAt.get(host.id) ?? null;
      const everyHost = reason === "cron" || !this.judgedAllSinceStart || resumed !== null;
      if (!everyHost && (dueAt === null || dueAt > now + BATCH_MS)) continue;
      const plan = planHost(this.config, host, this.hostState(host.id), "time", this.meta.listeningSince, now);
      events.push(...plan.events);
      notes.push(...plan.notes);
      if (plan.changed) changed.push(plan.state);
      this.hosts.set(host.id, plan.state);
      judged.push(host);
    }
    const notices = planNotices(this.config, this.hosts, this.meta, this.firstRun, now);
    const messages: PlannedMessage[] = [
      ...notices.texts.map((text) => ({ text })),
      ...(resumed === null ? [] : [{ text: resumed }]),
      ...planMessages(this.config, events, notes, this.hosts),
    ];
    const pagesSentAt = this.meta.pagesSentAt.filter((at) => now - at < DAY_MS);
    if (events.some(isProblem)) pagesSentAt.push(now);
    // Pruned once a UTC day, whatever the digest does.
    const today = new Date(now).toISOString().slice(0, 10);
    const prune = this.meta.prunedDate !== today;
    this.meta = {
      ...this.meta,
      lastAwakeAt: now,
      ...(reason === "cron" ? { lastCronAt: now } : { lastAlarmAt: now }),
      digestDate: notices.digestDate,
      pagesSentAt,
      configErrorPaged: null,
      watchingAnnouncedAt: this.meta.watchingAnnouncedAt ?? now,
      prunedDate: today,
    };
    this.deps.transaction(() => {
      for (const state of changed) this.storage.putHost(state);
      this.enqueue(messages, now);
      this.recordEvents(events, now);
      if (prune) this.storage.pruneHistory(now);
      this.saveMeta();
    });
    this.firstRun = false;
    this.judgedAllSinceStart = true;
    for (const host of judged) this.refreshDue(host, now);
    return events;
  }

  /**
   * After a time in which nothing ran (a quota ran out, so nothing could reach the
   * monitor), silence restarts counting now: nobody was listening. Returns the notice.
   */
  private noticeDeafness(now: number): string | null {
    let lastHeard = this.meta.lastAwakeAt;
    for (const state of this.hosts.values()) lastHeard = Math.max(lastHeard, state.record?.receivedAt ?? 0);
    const cronPeriodMs = this.config.timing.cronPeriodSeconds * 1000;
    // The cron's visits each minute are the proof of listening. A gap counts as deafness
    // only if the cron was visiting until it began: if the cron itself had stopped, every
    // host falling silent is what it looks like (a shared outage), and must page.
    const cronWasVisiting = this.meta.lastCronAt !== null && lastHeard - this.meta.lastCronAt <= 2 * cronPeriodMs;
    if (this.firstRun || now - lastHeard <= DEAF_AFTER_CRON_PERIODS * cronPeriodMs || !cronWasVisiting) return null;
    this.meta = { ...this.meta, listeningSince: now, lastAwakeAt: now };
    this.saveMeta();
    for (const host of this.config.hosts) this.refreshDue(host, now);
    return (
      `⚠️ <b>witness</b> could not be reached for ${formatSeconds((now - lastHeard) / 1000)} (since ${new Date(lastHeard).toISOString().replace(".000Z", "Z")}; ` +
      `most likely a daily quota ran out, which resets at 00:00 UTC). Silence during that time is not counted: hosts page dark only if they stay silent from now.`
    );
  }

  private report(reason: RunReport["reason"], events: number, delivered: number): RunReport {
    const permanentError = this.meta.telegram.permanentError;
    return {
      reason,
      events,
      delivered,
      undelivered: this.storage.outboxSize(),
      alarmAt: this.armedAt,
      deliveryOk: deliveryOk(this.meta, this.deps.now()),
      permanentError,
    };
  }

  // ---- the alarm: always the earliest due time ----

  private refreshDue(host: HostConfig, now: number): void {
    const state = this.hostState(host.id);
    this.dueAt.set(
      host.id,
      hostDueAt({
        host,
        config: this.config,
        record: state.record,
        judgement: state.judgement,
        operator: state.operator,
        followUps: state.followUps,
        command: state.command,
        listeningSince: this.meta.listeningSince,
        refusedAt: state.clockRefusal?.at ?? null,
        now,
      }),
    );
  }

  /** The earliest moment anything is due: hosts, the digest, an outbox retry. */
  earliestDue(now: number): number | null {
    let earliest: number | null = null;
    const consider = (at: number | null) => {
      if (at !== null && (earliest === null || at < earliest)) earliest = at;
    };
    for (const at of this.dueAt.values()) consider(at);
    const digestAt = this.config.alerts.digestAt;
    if (digestAt !== null) consider(nextDigestAt(this.config.alerts.timezone, now, digestAt, this.meta.digestDate));
    const head = this.storage.outboxHead();
    if (head !== undefined && this.meta.telegram.permanentError === null) consider(Math.max(head.notBefore, now + 1000));
    return earliest;
  }

  /**
   * Points the alarm at the earliest due time (plus the batch window), writing it only
   * when that moves it: earlier always; later only when the old time would otherwise
   * fire before the next ping could move it again (an alarm that wakes to find nothing
   * due costs a request and a row, the write costs one row).
   */
  private async arm(now: number, soonest: number | null, nextPingWithinMs: number, alarmConsumed = false): Promise<void> {
    const due = this.earliestDue(now);
    let target = due === null ? null : due + BATCH_MS;
    if (soonest !== null && (target === null || soonest < target)) target = soonest;
    if (target === null) return;
    const current = this.armedAt;
    if (alarmConsumed) {
      // An alarm set to "now" from inside the alarm handler may not fire again: keep a gap.
      target = Math.max(target, now + BATCH_MS);
      if (current === target) return;
    } else {
      // An alarm a few seconds past is about to run (or running late); older is lost.
      const valid = current !== null && current >= now - 5000;
      const later = valid && current < target;
      const firesBeforeNextPing = later && current <= now + nextPingWithinMs + BATCH_MS;
      if (valid && !(target < current) && !firesBeforeNextPing) return;
    }
    await this.deps.alarm.set(target);
    this.armedAt = target;
  }

  /** The alarm as the cron sees it, re-armed when missing or stuck in the past. */
  async verifyAlarm(): Promise<{ alarmAt: number | null; repaired: boolean }> {
    const now = this.deps.now();
    const stored = await this.deps.alarm.get();
    this.armedAt = stored;
    const due = this.earliestDue(now);
    const stuck = stored !== null && stored < now - 30_000;
    const missing = stored === null && due !== null;
    if (stuck || missing) {
      this.armedAt = null;
      await this.arm(now, null, 0, false);
      return { alarmAt: this.armedAt, repaired: true };
    }
    return { alarmAt: stored, repaired: false };
  }

  // ---- the outbox ----

  private enqueue(messages: readonly PlannedMessage[], now: number): void {
    if (messages.length === 0) return;
    for (const message of messages) {
      this.storage.enqueue({ createdAt: now, text: message.text, ...(message.buttons ? { buttons: message.buttons } : {}), attempts: 0, notBefore: now });
    }
    if (this.storage.outboxSize() > MAX_OUTBOX) {
      const queued = this.storage.outbox();
      const dropped = queued.slice(0, queued.length - MAX_OUTBOX + 1);
      for (const message of dropped) this.storage.deleteOutbox(message.id);
      this.storage.record({ at: now, hostId: null, type: "dropped", kind: null, detail: `${dropped.length} undelivered message(s) dropped`, by: null });
      this.storage.enqueue({
        createdAt: now,
        text: `⚠️ <b>witness</b>: ${dropped.length} older undelivered message(s) were dropped while Telegram was unreachable (see the event history).`,
        attempts: 0,
        notBefore: now,
      });
    }
  }

  private recordEvents(events: readonly AlertEvent[], now: number): void {
    for (const event of events) {
      this.storage.record({ at: now, hostId: event.hostId, type: event.type, kind: event.kind, detail: event.detail, by: null });
    }
  }

  private chatId(): string {
    return this.meta.migratedChatId ?? this.config.telegram.chatId;
  }

  /**
   * Sends queued messages in order; each success is recorded before the next send, so
   * a run that dies halfway repeats nothing it delivered. Stops at the first message
   * that cannot go now, so later pages never overtake it.
   */
  private async deliver(now: number): Promise<number> {
    // A Durable Object takes other requests while one awaits a fetch: a cron or a second
    // alarm arriving mid-send would read the same outbox head and send it again. One
    // delivery at a time; a run that finds one under way waits for it, then sends the rest.
    let waited = false;
    while (this.delivering !== null) {
      waited = true;
      await this.delivering.catch(() => 0);
    }
    const run = this.deliverQueued(waited ? this.deps.now() : now);
    this.delivering = run;
    try {
      return await run;
    } finally {
      if (this.delivering === run) this.delivering = null;
    }
  }

  private async deliverQueued(now: number): Promise<number> {
    const telegram = new TelegramClient(this.config.telegram.baseUrl, this.deps.telegramToken, this.deps.fetch);
    let delivered = 0;
    for (let sends = 0; sends < MAX_SENDS_PER_RUN; sends++) {
      const message = this.storage.outboxHead();
      if (message === undefined || message.notBefore > now) break;
      const markup = message.buttons?.length
        ? { inline_keyboard: message.buttons.map((row) => row.map((button) => ({ text: button.text, callback_data: button.data }))) }
        : undefined;
      let result = await telegram.sendMessage(this.chatId(), message.text, markup);
      if (!result.ok && result.migrateToChatId !== undefined) {
        result = await this.followMigration(telegram, result.migrateToChatId, message, markup, now);
      }
      if (!result.ok && result.permanent && !isChatProblem(result.error)) {
        // Telegram refuses this message itself (its HTML, most likely): the words still matter.
        result = await telegram.call("sendMessage", { chat_id: this.chatId(), text: plainText(message.text) });
      }
      if (result.ok) {
        delivered++;
        this.meta = { ...this.meta, telegram: { lastDeliveredAt: now, permanentError: null, failingSince: null } };
        this.deps.transaction(() => {
          this.storage.deleteOutbox(message.id);
          this.saveMeta();
        });
        continue;
      }
      this.recordFailure(message, result, now);
      break;
    }
    return delivered;
  }

  private async followMigration(
    telegram: TelegramClient,
    newChatId: string,
    message: OutboxMessage,
    markup: unknown,
    now: number,
  ): Promise<CallResult> {
    this.meta = { ...this.meta, migratedChatId: newChatId };
    this.deps.transaction(() => {
      this.saveMeta();
      this.storage.record({ at: now, hostId: null, type: "chat_migrated", kind: null, detail: `chat ${this.config.telegram.chatId} is now ${newChatId}`, by: null });
    });
    const notice = await telegram.sendMessage(
      newChatId,
      `⚠️ <b>witness</b>: this group became a supergroup, so its chat id changed from ${escapeHtml(this.config.telegram.chatId)} to ${escapeHtml(newChatId)}. ` +
        `Pages follow it for now; set <code>telegram.chatId = "${escapeHtml(newChatId)}"</code> in wrangler.toml and redeploy.`,
    );
    if (!notice.ok) console.error(`monitor: could not announce the chat migration: ${notice.error}`);
    return telegram.sendMessage(newChatId, message.text, markup);
  }

  private recordFailure(message: OutboxMessage, result: Extract<CallResult, { ok: false }>, now: number): void {
    const attempts = message.attempts + 1;
    // Short: a page waiting on a backoff after Telegram is back is a page late. A retry
    // is one subrequest, so every 30 s through an hour-long outage costs little.
    const backoffMs = result.retryAfterMs ?? Math.min(MAX_RETRY_BACKOFF_MS, 2000 * 2 ** Math.min(attempts, 8));
    const failed: OutboxMessage = { ...message, attempts, lastError: result.error, notBefore: now + backoffMs };
    const permanent = result.permanent ? result.error : null;
    if (permanent !== null) console.error(`telegram: permanent delivery error, pages kept until it is fixed: ${permanent}`);
    this.meta = {
      ...this.meta,
      telegram: { ...this.meta.telegram, permanentError: permanent, failingSince: this.meta.telegram.failingSince ?? now },
    };
    this.deps.transaction(() => {
      this.storage.updateOutbox(failed);
      this.saveMeta();
    });
  }

  // ---- the read side ----

  snapshot(now: number): Snapshot {
    return {
      publishedAt: now,
      lastCronAt: this.meta.lastCronAt,
      alarmAt: this.armedAt,
      telegram: {
        lastDeliveredAt: this.meta.telegram.lastDeliveredAt,
        permanentError: this.meta.telegram.permanentError,
        failingSince: this.meta.telegram.failingSince,
        undelivered: this.storage.outboxSize(),
      },
      hosts: this.config.hosts.map((host) => {
        const state = this.hostState(host.id);
        // Only what paged: an unconfirmed observation is not news to readers (and would
        // republish, spending KV writes, every time a flapping file flips).
        return { id: host.id, conditions: pagedKinds(state.judgement), lastPingAt: state.record?.receivedAt ?? null };
      }),
    };
  }

  /** Publishes when what readers see changed, and every publishSeconds regardless (health). */
  private async publish(now: number, changed: boolean): Promise<void> {
    const snapshot = this.snapshot(now);
    const fingerprint = JSON.stringify([snapshot.hosts.map((host) => host.conditions), snapshot.telegram.permanentError, snapshot.telegram.undelivered > 0, deliveryOk(this.meta, now)]);
    const last = this.meta.lastPublishedAt;
    const due = last === null || now - last >= this.config.timing.publishSeconds * 1000;
    // KV takes one write a second per key; a change waits at most for the next run.
    const changedNow = (changed || fingerprint !== this.meta.publishedFingerprint) && (last === null || now - last >= 1000);
    if (!due && !changedNow) return;
    try {
      await publishSnapshot(this.deps.kv, snapshot);
      this.usageToday(now).kvWrites += 1;
      this.meta = { ...this.meta, lastPublishedAt: now, publishedFingerprint: fingerprint };
      this.saveMeta();
    } catch (error) {
      // Readers see an older snapshot; judging does not depend on KV.
      console.error(`monitor: could not publish the snapshot to KV: ${errorMessage(error)}`);
    }
  }

  // ---- what the edge asks about ----

  hostState(hostId: string): HostState {
    const state = this.hosts.get(hostId);
    if (state !== undefined) return state;
    const fresh = emptyHostState(hostId, this.meta.createdAt);
    this.hosts.set(hostId, fresh);
    return fresh;
  }

  allHosts(): ReadonlyMap<string, HostState> {
    return this.hosts;
  }

  monitorMeta(): MonitorMeta {
    this.usageToday(this.deps.now());
    return this.meta;
  }

  outbox(): OutboxMessage[] {
    return this.storage.outbox();
  }

  alarmAt(): number | null {
    return this.armedAt;
  }

  /** Writes one host's state changed by the operator (ack, mute, pause) and re-arms. */
  async saveOperatorChange(state: HostState, history: Parameters<MonitorStorage["record"]>[0][], messages: PlannedMessage[] = []): Promise<void> {
    const now = this.deps.now();
    this.deps.transaction(() => {
      this.storage.putHost(state);
      for (const event of history) this.storage.record(event);
      this.enqueue(messages, now);
    });
    this.hosts.set(state.hostId, state);
    const host = findHost(this.config, state.hostId);
    if (host !== undefined) this.refreshDue(host, now);
    // A mute ended by hand (/unmute) is announced, and its held pages sent, now; so is a
    // maintenance window ended by hand while it holds a page. Due now, so the alarm armed
    // for now judges this host (a due time must lie ahead, so refreshDue cannot say it).
    const muteEnded = state.operator.mutedUntil !== null && state.operator.mutedUntil <= now && state.followUps.muteEndAnnounced !== state.operator.mutedUntil;
    const holding = Object.values(state.judgement.conditions).some((condition) => condition.heldUntil !== undefined);
    const maintenanceEnded = host !== undefined && holding && activeMaintenance(host, this.config, state.operator, now) === null;
    if (host !== undefined && (muteEnded || maintenanceEnded)) this.dueAt.set(host.id, now);
    await this.arm(now, messages.length > 0 || muteEnded || maintenanceEnded ? now : null, 0);
  }

  /** Marks a Telegram update handled; false when it already was. */
  markUpdate(updateId: number): boolean {
    return this.storage.markUpdate(updateId, this.deps.now());
  }

  events(options: { hostId?: string; since: number; limit?: number }): ReturnType<MonitorStorage["events"]> {
    return this.storage.events(options);
  }

  /** Pages a configuration error once (the Worker found the config invalid). */
  async pageConfigError(message: string): Promise<void> {
    if (this.meta.configErrorPaged === message) return;
    const now = this.deps.now();
    this.meta = { ...this.meta, configErrorPaged: message };
    this.deps.transaction(() => {
      this.enqueue([{ text: renderConfigError(message) }], now);
      this.saveMeta();
    });
    await this.deliver(now);
  }
}

/** Telegram failing for longer than this, even retriably, means pages are not reaching the phone. */
export const DELIVERY_FAILING_AFTER_MS = 5 * 60_000;

/**
 * Whether pages reach the phone: no permanent error, and no retriable failure going
 * on for minutes. The dead-man URL is pinged only then, and health says so otherwise.
 */
export function deliveryOk(meta: MonitorMeta, now: number): boolean {
  const failingSince = meta.telegram.failingSince;
  return meta.telegram.permanentError === null && (failingSince === null || now - failingSince < DELIVERY_FAILING_AFTER_MS);
}

/** The next digest moment: now when today's is due and not sent, else the next time the clock reads it. */
function nextDigestAt(timezone: string, now: number, hhmm: string, sentDate: string | null): number {
  const today = localDay(timezone, now, hhmm);
  if (today.reached && sentDate !== today.date) return now;
  return nextLocalTime(timezone, now, hhmm);
}

/**
 * The replay rule, exact now that every accepted ping is remembered: a ping from an agent
 * process already heard must carry a higher sequence number. A different process (a
 * restart, or a --check run beside the service) is judged on its own sequence, so it
 * can never lock out the live agent. Processes are remembered for twice the timestamp
 * window, the longest a captured ping stays acceptable.
 */
export function replayVerdict(agents: readonly AgentSeen[], bootId: string, startedAt: number, seq: number): string | null {
  const known = agents.find((agent) => agent.bootId === bootId && agent.startedAt === startedAt);
  if (known !== undefined && seq <= known.seq) return `replayed ping: sequence ${seq} is not after ${known.seq}`;
  return null;
}

/**
 * Whether `bootId` came before the boot of the last accepted ping. Boots are kept newest
 * first, and a boot heard only through refused pings (a reboot with a wrong clock) is
 * newer than the accepted one: it must not read as a replay of an old boot.
 */
function olderBoot(boots: readonly string[], currentBootId: string, bootId: string): boolean {
  const current = boots.indexOf(currentBootId);
  return current >= 0 && boots.slice(current + 1).includes(bootId);
}

/** Boot ids remembered per host, newest first. */
const MAX_BOOTS_SEEN = 16;

function rememberBoot(boots: readonly string[], bootId: string): string[] {
  return [bootId, ...boots.filter((boot) => boot !== bootId)].slice(0, MAX_BOOTS_SEEN);
}

function rememberAgent(agents: readonly AgentSeen[], seen: AgentSeen, now: number, windowMs: number): AgentSeen[] {
  const others = agents.filter((agent) => !(agent.bootId === seen.bootId && agent.startedAt === seen.startedAt) && now - agent.lastAt <= 2 * windowMs);
  return [seen, ...others].slice(0, MAX_AGENTS_SEEN);
}

/**
 * A host pinging faster than half its interval is misconfigured: answered 429 without a
 * write, so one agent cannot spend the account's quota. Counted per agent process, on
 * its own (signed) clock and the Worker's. Beyond that, new processes of one kind in a
 * burst are refused too: a service restarting in a loop (two service pings under a
 * second apart), or one-shot runs in a loop (two under half an interval apart). A
 * --check or --once run is never refused for coming close to the service's own ping.
 */
function rateVerdict(
  previous: HostState,
  host: HostConfig,
  agent: { bootId: string; startedAt: number; mode?: string | undefined },
  sentAt: number,
  now: number,
): { error: string; retryAfterSeconds: number } | null {
  const halfIntervalMs = (host.intervalSeconds * 1000) / 2;
  const sameAgent = previous.agents.find((seen) => seen.bootId === agent.bootId && seen.startedAt === agent.startedAt);
  const agentGapMs = sameAgent === undefined ? null : sentAt - sameAgent.sentAt;
  // Both clocks must agree: the agent's, so pings bunched by the network are not refused,
  // and the Worker's, so a host clock stepped back (NTP, a skew corrected) does not read
  // as pinging too fast and lock the agent out, unheard, until its clock catches up.
  if (sameAgent !== undefined && agentGapMs !== null && agentGapMs < halfIntervalMs && now - sameAgent.lastAt < halfIntervalMs) {
    return tooFast(host, agentGapMs, halfIntervalMs - agentGapMs);
  }
  const oneShot = isOneShot(agent.mode);
  const burstMs = oneShot ? halfIntervalMs : MIN_PING_GAP_MS;
  const lastOfKind = Math.max(...previous.agents.filter((seen) => isOneShot(seen.mode) === oneShot).map((seen) => seen.lastAt), -Infinity);
  if (now - lastOfKind < burstMs) return tooFast(host, now - lastOfKind, burstMs - (now - lastOfKind));
  return null;
}

function isOneShot(mode: string | undefined): boolean {
  return mode === "once" || mode === "check";
}

function tooFast(host: HostConfig, gapMs: number, waitMs: number): { error: string; retryAfterSeconds: number } {
  return {
    error: `pinging too fast: ${host.id} pings every ${host.intervalSeconds} s (its intervalSeconds); this one came ${Math.round(gapMs)} ms after the last`,
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
  };
}

/** The command the agent should apply: confirmed, allowed for the host, unexpired, not yet answered. */
function pendingCommands(state: HostState, host: HostConfig): PauseCommand[] {
  const stored = state.command;
  if (stored === null || stored.confirmedAt === null || !host.allowRemotePause) return [];
  if (stored.command.expiresAt <= (state.record?.receivedAt ?? 0)) return [];
  if (state.record?.commandResult?.id === stored.command.id) return [];
  return [stored.command];
}
