"""Sphinx fixes for the book build (loaded through `sphinx.local_extensions` in `_config.yml`).

Jupyter Book 1.x requires Sphinx 7, whose `app.add_js_file` puts a script added after the
builder starts into the page twice (fixed upstream by sphinx-doc/sphinx#13402, after the 7.x series).
sphinx-thebe adds `const THEBE_JS_URL = ...` that way, so every page of the book raised
"Identifier 'THEBE_JS_URL' has already been declared" in the browser. This extension drops the
repeated scripts from each page; the browser test (tests/test_site.py) checks that no page
logs an error.
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


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
