"""Sphinx fixes for the book build (loaded through `sphinx.local_extensions` in `_config.yml`).

Jupyter Book 1.x requires Sphinx 7, whose `app.add_js_file` puts a script added after the
builder starts into the page twice (fixed upstream by sphinx-doc/sphinx#13402, after the 7.x series).
sphinx-thebe adds `const THEBE_JS_URL = ...` that way, so every page of the book raised
"Identifier 'THEBE_JS_URL' has already been declared" in the browser. This extension drops the
repeated scripts from each page; the browser test (tests/test_site.py) checks that no page
logs an error.

It also serves MathJax from the build (`_static/mathjax/`, from PyPI's django-static-mathjax), so
that the math of an offline copy of `_build/html` renders.
"""


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        # the repeat differs only in its file name: None once, "" the other time
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


#: The parts of MathJax 3 (es5) that the book's pages load: the combined TeX/MathML component,
#: its fonts, the TeX extensions it may autoload, and the menu and accessibility parts.
MATHJAX_PARTS = ("tex-mml-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui",
                 "a11y")


def _mathjax_es5():
    """The es5 folder of MathJax 3 from PyPI's django-static-mathjax, or None if absent."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    es5 = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    return es5 if (es5 / "tex-mml-chtml.js").is_file() else None


def _serve_mathjax_locally(app):
    """Math renders with the network off (a classroom, a train): the pages load MathJax from
    the build's own `_static/mathjax/` instead of a CDN."""
    if app.builder.format == "html" and _mathjax_es5() is not None:
        app.config.mathjax_path = "mathjax/tex-mml-chtml.js"


def _copy_mathjax(app, exception):
    import shutil
    from pathlib import Path

    es5 = _mathjax_es5()
    if exception is not None or app.builder.format != "html" or es5 is None:
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        source, destination = es5 / part, target / part
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, dirs_exist_ok=True)
        else:
            shutil.copy2(source, destination)


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts)
    app.connect("builder-inited", _serve_mathjax_locally)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
