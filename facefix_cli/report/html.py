"""The report page: `render(page)` turns a `Page` into one self-contained HTML document.

Pure: data in, a string out; no files, no clock. Guarantees: every piece of text is escaped;
the page loads nothing but the thumbnail URLs it is given (inline CSS and script, no CDN, no
fonts, a data: favicon), and every thumbnail is `loading="lazy"` with its width and height set,
so a page of thousands of cards lays out at once and fetches only the images scrolled to. Each
card carries `data-faces`, `data-status` and `data-search` (lower-case name and prompt), which
the inline script filters on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from facefix_cli.weights.registry import REGISTRY


@dataclass(frozen=True)
class Thumb:
    url: str  # relative to the page
    width: int
    height: int


@dataclass(frozen=True)
class FaceView:
    after: Thumb
    before: Thumb | None
    score: float
    box: tuple[int, int, int, int]  # in the output's pixels
    number: int = 1  # the face's place in the record (1 = the first restored), as notes name it


@dataclass(frozen=True)
class Card:
    """One fixed image: the same region before and after, its faces, settings and operations."""

    name: str  # the output, as the page shows it
    output_url: str  # link to the full-size output (not loaded by the page)
    source: str  # the original, as the page shows it
    after: Thumb
    before: Thumb | None  # None: the original could not be found
    output_size: tuple[int, int]
    source_size: tuple[int, int] | None = None
    faces: tuple[FaceView, ...] = ()
    generation: tuple[tuple[str, str], ...] = ()  # (label, value): tool, prompt, seed...
    prompt: str = ""  # what the text filter searches, with the names
    operations: tuple[str, ...] = ()
    seconds: float | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


@dataclass(frozen=True)
class Summary:
    created: str  # when the report was made, as shown
    fixed: int
    skipped: int
    failed: int
    faces: int
    seconds: float | None = None  # None: not known (a report built from files afterwards)
    images_per_second: float | None = None
    device: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    models: tuple[tuple[str, str], ...] = ()  # (file, sha256)
    title: str = "facefix report"


@dataclass(frozen=True)
class Page:
    summary: Summary
    cards: tuple[Card, ...] = ()
    failed: tuple[Failure, ...] = ()
    skipped: tuple[Failure, ...] = field(default=())


def render(page: Page) -> str:
    """The whole HTML document."""
    summary = page.summary
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{_text(summary.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{_text(summary.title)}</h1>",
        f'<p class="meta">made {_text(summary.created)}</p></header>',
        _summary(summary),
        _filters(len(page.cards) + len(page.failed)),
        f'<section id="images" data-section><h2>Images ({len(page.cards)})</h2>',
        *(_card(card) for card in page.cards),
        "</section>",
        f'<section id="failed" data-section><h2>Failed files ({len(page.failed)})</h2>',
        *(_failure(failure) for failure in page.failed),
        "</section>",
        _skipped(page.skipped),
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _number(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _summary(summary: Summary) -> str:
    stats = [
        ("fixed", str(summary.fixed)),
        ("skipped", str(summary.skipped)),
        ("failed", str(summary.failed)),
        ("faces restored", str(summary.faces)),
        ("time", "—" if summary.seconds is None else f"{summary.seconds:.1f} s"),
        ("images/s", _number(summary.images_per_second, ".2f")),
        ("device", summary.device or "—"),
    ]
    out = ['<section id="summary"><dl class="stats">']
    out += [
        f'<div class="stat stat-{_text(label.split()[0].replace("/", ""))}'
        f'{" bad" if label == "failed" and value != "0" else ""}">'
        f"<dt>{_text(label)}</dt><dd>{_text(value)}</dd></div>"
        for label, value in stats
    ]
    out.append("</dl>")
    if summary.options:
        out.append("<details open><summary>Options</summary><table class=kv>")
        out += [f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in summary.options]
        out.append("</table></details>")
    if summary.models:
        out.append("<details open><summary>Model files</summary><table class=models>")
        out.append("<tr><th>file</th><th>SHA-256</th><th>released file?</th></tr>")
        out += [
            f"<tr><td>{_text(name)}</td><td><code>{_text(digest)}</code></td>"
            f"<td>{released_note(name, digest)}</td></tr>"
            for name, digest in summary.models
        ]
        out.append("</table></details>")
    out.append("</section>")
    return "\n".join(out)


def released_note(file: str, digest: str) -> str:
    """Whether the recorded digest is the released file's, as HTML: the records name the bytes
    used, so a fine-tune or a damaged copy under a registry name shows here as such."""
    rows = [m for m in REGISTRY.models if m.file == file]
    if any(m.sha256 == digest for m in rows):
        return "yes"
    if rows:
        return f"no: the release is <code>{_text(rows[0].sha256)}</code>"
    return "no registry entry"


def _filters(total: int) -> str:
    return (
        '<nav id="filters">'
        '<label><input type="checkbox" id="filter-faces"> has faces</label>'
        '<label><input type="checkbox" id="filter-failed"> failed</label>'
        '<input type="search" id="filter-text" placeholder="search prompt or file name"'
        ' aria-label="search prompt or file name">'
        '<button type="button" id="show-all" title="Set every slider to before, then after">'
        "all: before</button>"
        f'<span id="shown">{total} of {total} shown</span></nav>'
    )


def _img(thumb: Thumb, css_class: str, alt: str, extra: str = "") -> str:
    return (
        f'<img class="{css_class}" src="{_text(thumb.url)}" width="{thumb.width}"'
        f' height="{thumb.height}" loading="lazy" decoding="async" alt="{_text(alt)}"{extra}>'
    )


def _card(card: Card) -> str:
    search = " ".join((card.name, card.source, card.prompt)).lower()
    out = [
        f'<article class="card" data-status="fixed" data-faces="{len(card.faces)}"'
        f' data-search="{_text(search)}">',
        f'<h3><a href="{_text(card.output_url)}">{_text(card.name)}</a></h3>',
        '<div class="body"><div class="view">',
    ]
    width, height = card.after.width, card.after.height
    box = f'style="width:{width}px;aspect-ratio:{width}/{height}"'
    if card.before is not None:
        out += [
            f'<div class="compare" {box}>',
            _img(card.before, "before", f"before: {card.source}"),
            _img(card.after, "after", f"after: {card.name}", ' style="clip-path:inset(0 0 0 50%)"'),
            '<div class="divider" style="left:50%"></div>',
            '<span class="tag left">before</span><span class="tag right">after</span></div>',
            '<input type="range" class="slider" min="0" max="100" value="50"'
            ' aria-label="before/after: left shows before, right shows after">',
        ]
    else:
        out += [
            f'<div class="compare" {box}>',
            _img(card.after, "after", f"after: {card.name}"),
            '<span class="tag right">after</span></div>',
        ]
    if card.faces:
        out.append('<div class="faces">')
        for face in card.faces:
            number = face.number
            x0, y0, x1, y1 = face.box
            out.append('<figure class="face"><div class="pair">')
            if face.before is not None:
                out.append(_img(face.before, "face-before", f"face {number} before"))
            out.append(_img(face.after, "face-after", f"face {number} after"))
            out.append(
                f"</div><figcaption>face {number} · score {face.score:.3f} · "
                f"box {x0},{y0}–{x1},{y1}</figcaption></figure>"
            )
        out.append("</div>")
    out.append('</div><div class="info">')
    size = f"{card.output_size[0]}×{card.output_size[1]}"
    if card.source_size:
        size = f"{card.source_size[0]}×{card.source_size[1]} → {size}"
    facts = [("original", card.source), ("size", size), ("faces", str(len(card.faces)))]
    if card.seconds is not None:
        facts.append(("time", f"{card.seconds:.2f} s"))
    out.append('<dl class="kv">')
    out += [f"<dt>{_text(k)}</dt><dd>{_text(v)}</dd>" for k, v in (*facts, *card.generation)]
    out.append("</dl>")
    if card.operations:
        out.append('<ul class="ops">')
        out += [f"<li>{_text(operation)}</li>" for operation in card.operations]
        out.append("</ul>")
    out += [f'<p class="note">{_text(note)}</p>' for note in card.notes]
    out.append("</div></div></article>")
    return "\n".join(out)


def _failure(failure: Failure) -> str:
    return (
        f'<article class="card failed" data-status="failed" data-faces="0"'
        f' data-search="{_text(failure.path.lower())}">'
        f"<h3>{_text(failure.path)}</h3><p class=reason>{_text(failure.reason)}</p></article>"
    )


def _skipped(skipped: tuple[Failure, ...]) -> str:
    if not skipped:
        return ""
    rows = "".join(f"<li>{_text(s.path)}: {_text(s.reason)}</li>" for s in skipped)
    return f'<details id="skipped"><summary>Skipped ({len(skipped)})</summary><ul>{rows}</ul></details>'


_CSS = """
:root{color-scheme:light dark;--bg:#f6f6f4;--fg:#1d1d1f;--card:#fff;--line:#ddd;--muted:#666;
--accent:#2563eb;--bad:#b91c1c}
@media (prefers-color-scheme:dark){:root{--bg:#17181a;--fg:#e8e8e8;--card:#222427;--line:#3a3c40;
--muted:#9a9a9a;--accent:#7aa2ff;--bad:#f87171}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1400px;padding:16px 24px;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
[hidden]{display:none!important}
h1{margin:0;font-size:22px}h2{font-size:18px;margin:24px 0 8px}h3{margin:0 0 8px;font-size:15px;
word-break:break-all}
a{color:var(--accent)}.meta{color:var(--muted);margin:2px 0 12px}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 8px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px 14px;
min-width:96px}
.stat dt{color:var(--muted);font-size:12px}.stat dd{margin:0;font-size:20px;font-weight:600}
.stat.bad dd{color:var(--bad)}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
table{border-collapse:collapse;margin:6px 0}td,th{padding:2px 10px 2px 0;text-align:left;
vertical-align:top}th{color:var(--muted);font-weight:500}code{font-size:12px;word-break:break-all}
#filters{position:sticky;top:0;z-index:5;display:flex;flex-wrap:wrap;gap:14px;align-items:center;
padding:10px 0;background:var(--bg);border-bottom:1px solid var(--line)}
#filter-text{flex:1;min-width:200px;max-width:420px;padding:5px 8px;font:inherit}
#shown{color:var(--muted)}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px;
margin:12px 0;content-visibility:auto;contain-intrinsic-size:auto 700px}
.card.failed{border-left:4px solid var(--bad);contain-intrinsic-size:auto 70px}
.reason{margin:0;color:var(--bad)}
.body{display:flex;flex-wrap:wrap;gap:18px}.view{flex:0 1 auto;max-width:100%}
.info{flex:1 1 300px;min-width:260px}
.compare{position:relative;max-width:100%;overflow:hidden;border-radius:6px;
background:repeating-conic-gradient(#bbb 0 25%,#eee 0 50%) 0 0/16px 16px;user-select:none}
.compare img{position:absolute;inset:0;width:100%;height:100%;display:block}
.divider{position:absolute;top:0;bottom:0;width:2px;margin-left:-1px;background:#fff;
box-shadow:0 0 3px #000;pointer-events:none}
.tag{position:absolute;top:6px;padding:1px 6px;border-radius:4px;font-size:12px;color:#fff;
background:rgba(0,0,0,.55)}.tag.left{left:6px}.tag.right{right:6px}
.slider{display:block;width:100%;margin:6px 0 0}
.faces{display:flex;flex-wrap:wrap;gap:12px;margin-top:10px}
.face{margin:0}.pair{display:flex;gap:2px}
.pair img{display:block;max-width:100%;height:auto;border-radius:4px;
background:repeating-conic-gradient(#bbb 0 25%,#eee 0 50%) 0 0/16px 16px}
figcaption{color:var(--muted);font-size:12px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
.kv dt{color:var(--muted)}.kv dd{margin:0;white-space:pre-wrap;word-break:break-word}
.ops{margin:8px 0 0;padding-left:18px}.note{color:var(--muted);font-style:italic;margin:6px 0 0}
"""

# Filters and the before/after sliders. Plain DOM, no library: the page must work offline.
_SCRIPT = """
(function () {
  var cards = Array.prototype.slice.call(document.querySelectorAll('.card'));
  var faces = document.getElementById('filter-faces');
  var failed = document.getElementById('filter-failed');
  var text = document.getElementById('filter-text');
  var shown = document.getElementById('shown');
  function apply() {
    var query = text.value.trim().toLowerCase();
    var count = 0;
    cards.forEach(function (card) {
      var show = (!faces.checked || Number(card.dataset.faces) > 0) &&
        (!failed.checked || card.dataset.status === 'failed') &&
        (!query || card.dataset.search.indexOf(query) >= 0);
      card.hidden = !show;
      if (show) { count += 1; }
    });
    shown.textContent = count + ' of ' + cards.length + ' shown';
    document.querySelectorAll('[data-section]').forEach(function (section) {
      section.hidden = !section.querySelector('.card:not([hidden])');
    });
  }
  function slide(slider) {
    var compare = slider.previousElementSibling;
    var value = Number(slider.value);
    compare.querySelector('.after').style.clipPath = 'inset(0 0 0 ' + value + '%)';
    compare.querySelector('.divider').style.left = value + '%';
  }
  [faces, failed].forEach(function (box) { box.addEventListener('change', apply); });
  text.addEventListener('input', apply);
  document.addEventListener('input', function (event) {
    if (event.target.classList.contains('slider')) { slide(event.target); }
  });
  var button = document.getElementById('show-all');
  button.addEventListener('click', function () {
    var before = button.textContent === 'all: before';
    document.querySelectorAll('.slider').forEach(function (slider) {
      slider.value = before ? 100 : 0;
      slide(slider);
    });
    button.textContent = before ? 'all: after' : 'all: before';
  });
  apply();
})();
"""
