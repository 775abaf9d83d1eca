"""report.html: the page escapes text, loads images lazily with their sizes, and asks nothing
of the network."""

from __future__ import annotations

import re

from facefix_cli.report import html


def test_the_page_escapes_text_and_loads_every_image_lazily_with_its_size():
    thumb = html.Thumb("t/a b.webp", 64, 48)
    card = html.Card(
        name="x.fixed.png",
        output_url="x.fixed.png",
        source="x.png",
        after=thumb,
        before=thumb,
        output_size=(128, 96),
        faces=(html.FaceView(thumb, thumb, 0.99, (1, 2, 3, 4)),),
        generation=(("prompt", "<script>alert(1)</script> & more"),),
        prompt="<script>alert(1)</script>",
    )
    page = html.render(
        html.Page(html.Summary("now", 1, 0, 1, 1), (card,), (html.Failure("bad.png", "x<y"),))
    )
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    images = re.findall(r"<img [^>]*>", page)
    assert len(images) == 4
    for tag in images:
        assert 'loading="lazy"' in tag and 'width="64"' in tag and 'height="48"' in tag
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from the network
    assert 'data-status="failed"' in page and "x&lt;y" in page
