"""The console's pages: Jinja templates compiled once, autoescaped, extending one base."""

from __future__ import annotations

from jinja2 import DictLoader, Environment, select_autoescape

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %} · renewals</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
 header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
 header a{color:#cfd6e4;text-decoration:none} header b{font-size:16px}
 header form{margin-left:auto} input{padding:4px 8px;width:260px}
 main{padding:16px 24px} h2{font-size:16px;margin:20px 0 8px}
 table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:8px}
 th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e6eb;vertical-align:top}
 th{background:#eef0f4;font-weight:600} table.compact td{padding:2px 8px;vertical-align:middle} td.num{text-align:right;font-variant-numeric:tabular-nums}
 .lag{color:#b3261e;font-weight:600} .ok{color:#1e7b34} .dim{color:#6b7385}
 .err{color:#b3261e;font-family:ui-monospace,monospace;font-size:12px}
 .warn{background:#fff4e5;border:1px solid #f0c987;padding:8px 12px}
 tr.stale td{color:#9aa1b0} tr.stale td.lag{color:#9aa1b0;font-weight:400}
 svg.chart{display:block;flex:none;background:#fafbfc} svg.chart .floor{stroke:#e3e6eb}
 svg.chart polyline{fill:none;stroke:#2f6fdf;stroke-width:1.5} svg.chart circle{fill:#2f6fdf}
 svg.chart.bad polyline{stroke:#b3261e} svg.chart.bad circle{fill:#b3261e}
 .figure{display:flex;align-items:center;gap:8px}
 .chart-note{font-size:11px;color:#6b7385;white-space:nowrap}
 code{font-size:12px}
 td.step{font-family:ui-monospace,monospace;font-size:12px;white-space:nowrap}
</style></head><body>
<header><b>renewals</b><a href="/">overview</a><a href="/dlq">dead letters</a>
<form action="/search"><input name="q" placeholder="CSN or subscription id" value="{{ query or '' }}"
 aria-label="search"><button>search</button></form></header>
<main>{% block main %}{% endblock %}</main></body></html>"""

_OVERVIEW = """{% extends "base" %}{% block title %}overview{% endblock %}{% block main %}
<h2>The last {{ window_label }}</h2>
{% if charts is none %}<p id="charts-unavailable" class="warn">No charts: Prometheus at
<code>{{ prometheus }}</code> does not answer ({{ charts_error }}). Everything below comes from
the broker and the databases.</p>
{% else %}<table id="charts" class="compact"><tr><th>topic</th><th>messages handled per second</th>
<th>consumer lag (the worst group)</th><th>dead letters per minute</th></tr>
{% for t in topics %}<tr><td>{{ t.topic }}</td>
{% for metric, label, unit, css in chart_columns %}<td>{{ chart(metric, t.topic, label, unit, css) }}</td>
{% endfor %}</tr>{% endfor %}</table>
<p class="dim">From Prometheus at <code>{{ prometheus }}</code>, a sample every {{ window.step|round|int }} s.</p>
{% endif %}
<h2>Topics and consumer lag</h2>
{% if stale_count %}<p id="stale-note" class="dim">{% if show_stale %}Greyed: {{ stale_count }} stale
consumer group{{ 's' if stale_count > 1 }} (no consumer belongs to it: a service stopped, renamed or
gone). <a href="/">Hide them</a>{% else %}{{ stale_count }} stale consumer group{{ 's' if stale_count > 1 }}
(no consumer belongs to it) hidden. <a id="show-stale" href="/?stale=1">Show them</a>{% endif %}</p>{% endif %}
<table id="topics"><tr><th>topic</th><th>partitions</th><th>end offset</th><th>msg/s (1 min)</th>
<th>consumer group</th><th>lag</th></tr>
{% for t in topics %}{% set groups = t.groups if show_stale else t.groups|rejectattr("stale")|list %}
{% for g in (groups or [None]) %}<tr{% if g and g.stale %} class="stale"{% endif %}>
<td>{% if loop.first %}{{ t.topic }}{% endif %}</td>
<td class="num">{% if loop.first %}{{ t.partitions }}{% endif %}</td>
<td class="num">{% if loop.first %}{{ t.end_offset }}{% endif %}</td>
<td class="num">{% if loop.first %}{{ t.per_second }}{% endif %}</td>
<td>{{ g.group if g else '—' }}{% if g and g.stale %} <span class="stale-age">· no consumer{% if g.last_read_ms %},
last read a message of {{ age(g.last_read_ms) }} ago{% endif %}</span>{% endif %}</td>
<td class="num {{ 'lag' if g and g.lag else '' }}">{{ g.lag if g else '' }}</td></tr>
{% endfor %}{% endfor %}</table>
<h2>Dead letters</h2>
<table id="dlq-counts"><tr><th>DLQ</th><th>dead letters</th><th>not replayed</th></tr>
{% for name, count in dlq_counts %}<tr><td><a href="/dlq?topic={{ name|urlencode }}">{{ name }}</a></td>
<td class="num">{{ count }}</td><td class="num">{{ open_counts[name] }}</td></tr>
{% else %}<tr><td colspan="3" class="ok">no dead letter</td></tr>{% endfor %}</table>
{% include "letters" %}
<h2>Running batches</h2>
<table id="batches"><tr><th>request</th><th>CSN</th><th>status</th><th>done</th><th>renewed</th>
<th>refused</th><th>received</th></tr>
{% for b in batches %}<tr><td>{{ b.request_id }}</td><td><a href="/customer/{{ b.csn|urlencode }}">{{ b.csn }}</a></td>
<td>{{ b.status }}</td><td class="num">{{ b.done }}/{{ b.total_items }}</td><td class="num">{{ b.renewed }}</td>
<td class="num">{{ b.rejected }}</td><td>{{ b.received_at|string|truncate(19, True, '') }}</td></tr>
{% else %}<tr><td colspan="7" class="dim">no batch in progress</td></tr>{% endfor %}</table>
{% endblock %}"""

_LETTERS = """<h2>{{ letters_title }}</h2>
<table id="letters"><tr><th>dead letter</th><th>group</th><th>CSN</th><th>type</th><th>error</th>
<th>failed at</th><th>replayed as</th></tr>
{% for d in letters %}<tr><td><code>{{ d.ref }}</code></td><td>{{ d.consumer_group }}</td>
<td>{% if d.csn %}<a href="/customer/{{ d.csn|urlencode }}">{{ d.csn }}</a>{% endif %}</td>
<td>{{ d.event_type or '' }}{% if d.event_id %} <a class="trace-link" href="/trace?id={{ d.event_id|urlencode }}">trace</a>{% endif %}</td><td class="err">{{ d.error_type }}: {{ d.error|truncate(300) }}</td>
<td>{{ d.failed_at[:19] }}</td><td>{{ d.replayed_as or '' }}</td></tr>
{% else %}<tr><td colspan="7" class="ok">none</td></tr>{% endfor %}</table>"""

_DLQ = """{% extends "base" %}{% block title %}dead letters{% endblock %}{% block main %}
{% include "letters" %}
<p class="dim">Replay from the command line: <code>renewals dlq replay REF</code> (read-only here).</p>
{% endblock %}"""

_KNOWN = """{% extends "base" %}{% block title %}{{ heading }}{% endblock %}{% block main %}
<h2 id="heading">{{ heading }}</h2>
<p><a id="trace-link" href="/trace?id={{ query|urlencode }}">Trace of {{ query }}</a>: every event
that mentions it, across the services.</p>
{% if not found %}<p class="dim">Nothing is known of {{ query }}.</p>{% else %}
{% set r = found.renewal %}{% set traced = ["order_id", "request_id"] %}
{% macro rows(title, id, items, columns) %}<h2>{{ title }}</h2><table id="{{ id }}"><tr>
{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for item in items %}<tr>{% for c in columns %}<td>{% if item[c] is none %}{% elif c in traced %}<a href="/trace?id={{ item[c]|urlencode }}">{{ item[c] }}</a>{% else %}{{ item[c] }}{% endif %}</td>{% endfor %}</tr>
{% else %}<tr><td colspan="{{ columns|length }}" class="dim">none</td></tr>{% endfor %}</table>{% endmacro %}
{{ rows("Subscriptions (renewal)", "subscriptions", r.subscriptions,
   ["subscription_id", "csn", "state", "renewal_date", "term", "seats", "auto_renew"]) }}
{{ rows("Orders (billing)", "orders", found.billing.orders,
   ["order_id", "request_id", "status", "total", "currency", "created_at"]) }}
{{ rows("Payments (billing)", "payments", found.billing.payments,
   ["order_id", "outcome", "amount", "currency", "reason", "at"]) }}
{{ rows("Emails (notification)", "emails", found.emails,
   ["kind", "subject", "status", "order_id", "sent_at"]) }}
<h2>Open quotes</h2><p class="dim">{{ found.quotes.note if not found.quotes.available else found.quotes.open|length ~ ' open' }}</p>
{{ rows("Audit trail", "history", r.history, ["at", "subscription_id", "change", "detail", "request_id"]) }}
{% endif %}{% endblock %}"""


_TRACE = """{% extends "base" %}{% block title %}trace of {{ query }}{% endblock %}{% block main %}
<h2 id="heading">Trace of {{ query }}</h2>
{% if not found.steps %}<p id="no-trace" class="dim">No event of the last {{ since }} mentions {{ query }}.</p>
{% else %}<p class="dim">{{ found.steps|length }} events over the last {{ since }}; trace id{{ 's' if found.trace_ids|length != 1 }}:
{% for t in found.trace_ids %}<code>{{ t }}</code>{{ ', ' if not loop.last }}{% else %}none (the events carry no traceparent){% endfor %}.
Indented under the event that caused it.</p>
<table id="trace"><tr><th>since start</th><th>since previous</th><th>event</th><th>service</th>
<th>topic</th><th>ids</th><th>published (UTC)</th></tr>
{% for s in found.steps %}<tr><td class="num">{{ '%.3f'|format(s.since_start) }} s</td>
<td class="num">{{ '%.3f'|format(s.since_previous) }} s</td>
<td class="step" style="padding-left:{{ 8 + 16 * s.depth }}px">{{ s.type }}</td><td>{{ s.service }}</td>
<td>{{ s.topic }}</td><td>{% for name, value in s.keys.items() %}{{ name }}=<code>{{ value|join(', ') if value is not string else value }}</code>{{ ' ' if not loop.last }}{% endfor %}</td>
<td class="num">{{ s.published_at.strftime('%H:%M:%S.%f')[:12] }}</td></tr>{% endfor %}</table>
{% endif %}
<p class="dim">The same from the command line: <code>renewals trace {{ query }} --since {{ since }}</code>.</p>
{% endblock %}"""


def environment() -> Environment:
    return Environment(
        loader=DictLoader(
            {
                "base": _BASE,
                "overview": _OVERVIEW,
                "letters": _LETTERS,
                "dlq": _DLQ,
                "known": _KNOWN,
                "trace": _TRACE,
            }
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
