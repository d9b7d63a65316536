// The status pages' one stylesheet, inline so a page is one request. Phone first: one
// column, nothing wider than the screen (long details wrap anywhere), light and dark.
export const STYLE = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1b1b; --muted: #666; --line: #ddd; --card: #fafafa;
  --ok: #2e7d32; --bad: #c62828; --wait: #757575; --paused: #6a1b9a;
  --dark: #c62828; --stale: #f9a825; --failing: #ef6c00; --tripped: #6a1b9a; --other: #8d6e63; }
@media (prefers-color-scheme: dark) { :root { --bg: #121212; --fg: #eee; --muted: #aaa; --line: #333; --card: #1c1c1c; } }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 60rem; padding: 0.75rem; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: var(--bg); color: var(--fg); overflow-wrap: anywhere; }
h1 { font-size: 1.4rem; margin: 0.2rem 0; }
h2 { font-size: 1.05rem; margin: 0 0 0.4rem; display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; }
a { color: inherit; }
.muted, figcaption, small { color: var(--muted); }
.bar { display: flex; flex-wrap: wrap; gap: 0.5rem; justify-content: space-between; align-items: center; }
.summary { font-size: 1.1rem; font-weight: 600; margin: 0.2rem 0; }
.summary.ok { color: var(--ok); } .summary.bad { color: var(--bad); }
.bad-text { color: var(--bad); font-weight: 600; }
.host, .card { border: 1px solid var(--line); border-left-width: 6px; border-radius: 8px; padding: 0.6rem 0.75rem; margin: 0.75rem 0; background: var(--card); }
.host.ok { border-left-color: var(--ok); } .host.bad { border-left-color: var(--bad); }
.host.wait { border-left-color: var(--wait); } .host.paused { border-left-color: var(--paused); }
.dot { width: 0.7rem; height: 0.7rem; border-radius: 50%; background: var(--wait); display: inline-block; }
.ok .dot { background: var(--ok); } .bad .dot { background: var(--bad); } .paused .dot { background: var(--paused); }
.state { font-weight: 400; color: var(--muted); }
.bad .state { color: var(--bad); font-weight: 600; }
.conditions { margin: 0 0 0.4rem; padding-left: 1.1rem; }
dl { display: grid; grid-template-columns: minmax(5.5rem, max-content) 1fr; gap: 0.15rem 0.75rem; margin: 0.3rem 0; }
dt { color: var(--muted); } dd { margin: 0; min-width: 0; }
.timeline { margin: 0.5rem 0 0; }
.timeline svg { width: 100%; height: 2.2rem; display: block; }
.timeline figcaption { display: flex; justify-content: space-between; font-size: 0.8rem; }
.track { fill: var(--line); } .tick { stroke: var(--muted); stroke-width: 1; }
.maintenance { fill: var(--muted); fill-opacity: 0.35; }
.span.dark, .swatch.dark { fill: var(--dark); background: var(--dark); }
.span.stale, .swatch.stale { fill: var(--stale); background: var(--stale); }
.span.failing, .swatch.failing { fill: var(--failing); background: var(--failing); }
.span.tripped, .swatch.tripped { fill: var(--tripped); background: var(--tripped); }
.span.other, .swatch.other { fill: var(--other); background: var(--other); }
.swatch.maintenance { background: var(--muted); opacity: 0.5; }
.legend { display: flex; flex-wrap: wrap; gap: 0.3rem 0.9rem; font-size: 0.85rem; }
.swatch { display: inline-block; width: 0.9rem; height: 0.9rem; border-radius: 2px; margin-right: 0.3rem; vertical-align: -0.1rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.25rem 0.4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td { font-variant-numeric: tabular-nums; overflow-wrap: normal; } td small { white-space: nowrap; }
.log { list-style: none; padding: 0; margin: 0; }
.log li { padding: 0.3rem 0; border-bottom: 1px solid var(--line); }
.log time { color: var(--muted); font-variant-numeric: tabular-nums; }
.log .detail { display: block; color: var(--muted); font-size: 0.85rem; }
.narrow { max-width: 24rem; margin: 3rem auto; }
form { margin: 0; }
label { display: block; margin: 0.5rem 0 0.2rem; }
input { width: 100%; font: inherit; padding: 0.5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
button { font: inherit; margin-top: 0.6rem; padding: 0.45rem 1rem; border-radius: 6px; border: 1px solid var(--line); background: var(--card); color: var(--fg); cursor: pointer; }
button.link { margin: 0; padding: 0; border: 0; background: none; text-decoration: underline; color: var(--muted); }
.error { color: var(--bad); font-weight: 600; }
.public li { display: flex; justify-content: space-between; gap: 1rem; padding: 0.5rem 0; border-bottom: 1px solid var(--line); }
.up { color: var(--ok); font-weight: 600; } .down { color: var(--bad); font-weight: 600; } .unknown { color: var(--wait); }
@media (max-width: 30rem) { th:nth-child(3), td:nth-child(3) { display: none; } }
`;
