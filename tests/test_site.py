"""The rendered course in a real browser: a theory chapter, a lab and a training chapter, rendered by
`ganlab.site` and opened in headless Chromium with the network switched off. Math must be typeset, every
figure must load, every link between pages must lead to a rendered page, and no request may leave the
machine. Needs Debian's `chromium` and `chromium-driver` and selenium (the dev extra); without them the
browser test skips, unless GANLAB_REQUIRE_BROWSER=1 (CI sets it), where it fails."""
import json, os, re, shutil
from pathlib import Path
from urllib.parse import unquote, urlparse
import pytest
import yaml
from ganlab.site import course_notebooks, render_site

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
# A theory chapter, a lab (the instructor's source, with its outputs) and a training chapter.
PAGES = ['12_wasserstein.ipynb', 'labs/lab1_game.ipynb', '24_mode_collapse.ipynb']


def browser_or_skip():
    "Paths of chromium and chromedriver; skip (or fail under GANLAB_REQUIRE_BROWSER=1) when one is missing."
    chromium = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    driver = shutil.which('chromedriver')
    missing = [name for name, path in [('chromium', chromium), ('chromedriver', driver)] if not path]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('selenium (pip)')
    if missing:
        install = 'apt-get install chromium chromium-driver'
        reason = f"the headless-browser check needs {', '.join(missing)} ({install})"
        if os.environ.get('GANLAB_REQUIRE_BROWSER', '') not in ('', '0'):
            pytest.fail(f'GANLAB_REQUIRE_BROWSER is set and {reason}')
        pytest.skip(f'{reason}; set GANLAB_REQUIRE_BROWSER=1 to fail instead of skipping')
    return chromium, driver


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The three pages and the pages they link to, rendered once for this module."
    out = tmp_path_factory.mktemp('site')
    pages = render_site(out, NBS, notebooks=[NBS / p for p in PAGES])
    return out, pages


def test_rendered_pages_load_nothing_from_the_network(site):
    out, pages = site
    rendered = {p.relative_to(out).as_posix() for p in pages}
    assert {p.replace('.ipynb', '.html') for p in PAGES} <= rendered
    assert '13_likelihood.html' in rendered  # chapter 12 links to 13, so 13 is rendered with it
    assert (out / '_static/mathjax/tex-chtml-full.js').is_file()
    for page in pages:
        html = page.read_text()
        remote = re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="((?:https?:)?//[^"]*)"', html)
        assert remote == [], (page.name, remote)
    for notebook in PAGES:  # their links all lead to rendered pages (the pages they link to may link further)
        html = (out / notebook.replace('.ipynb', '.html')).read_text()
        assert not re.search(r'href="[^":]+\.ipynb', html), f'{notebook} links a notebook, not its page'


def _start_chromium(chromium, driver):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                 '--window-size=1280,900', '--hide-scrollbars']:
        options.add_argument(flag)
    options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    browser = webdriver.Chrome(options=options, service=Service(driver))
    browser.set_script_timeout(60)
    browser.execute_cdp_cmd('Network.enable', {})
    offline = {'offline': True, 'latency': 0, 'downloadThroughput': -1, 'uploadThroughput': -1}
    browser.execute_cdp_cmd('Network.emulateNetworkConditions', offline)
    return browser


# Resolves once MathJax has typeset the page (MathJax 3's startup promise), with what the page then shows.
INSPECT = """
const done = arguments[arguments.length - 1];
function report(status) {
  const prose = [];
  for (const block of document.querySelectorAll('.jp-RenderedMarkdown')) {
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT, {acceptNode: node =>
      node.parentElement.closest('code, pre, mjx-container, script, style') ? NodeFilter.FILTER_REJECT
                                                                            : NodeFilter.FILTER_ACCEPT});
    while (walker.nextNode()) prose.push(walker.currentNode.textContent);
  }
  done({
    status: status,
    math: document.querySelectorAll('mjx-container').length,
    errors: Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]')).map(e => e.textContent),
    prose: prose.join(' '),
    images: Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src.slice(0, 40)]),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
  });
}
function wait() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => report('typeset'), e => report('MathJax failed: ' + e));
  } else if (document.readyState === 'complete' && !(window.MathJax && MathJax.version)) {
    report('MathJax did not load');
  } else setTimeout(wait, 50);
}
wait();
"""


def _remote_requests(browser):
    "URLs other than file: and data: that the page asked for, from Chromium's performance log."
    urls = []
    for entry in browser.get_log('performance'):
        message = json.loads(entry['message'])['message']
        if message['method'] == 'Network.requestWillBeSent':
            urls.append(message['params']['request']['url'])
    return [u for u in urls if not u.startswith(('file:', 'data:'))]


def test_pages_in_headless_chromium(request):
    chromium, driver = browser_or_skip()  # before rendering, so that a skip costs nothing
    out, _ = request.getfixturevalue('site')
    shots = Path(os.environ.get('GANLAB_SITE_SCREENSHOTS', out / '_screenshots'))
    shots.mkdir(parents=True, exist_ok=True)
    browser = _start_chromium(chromium, driver)
    try:
        for notebook in PAGES:
            page = out / notebook.replace('.ipynb', '.html')
            browser.get(page.as_uri())
            seen = browser.execute_async_script(INSPECT)
            name = Path(notebook).stem
            browser.save_screenshot(str(shots / f'{name}.png'))
            browser.execute_script("document.querySelector('.jp-OutputArea-output img').scrollIntoView()")
            browser.save_screenshot(str(shots / f'{name}-figure.png'))
            assert seen['status'] == 'typeset', (notebook, seen['status'])
            # Math: typeset, without TeX errors, and no formula left as raw TeX in the prose.
            assert seen['math'] >= 10, (notebook, seen['math'])
            assert seen['errors'] == [], (notebook, seen['errors'])
            raw = re.findall(r'\$[^$\s][^$]*\$|\\\(|\\\[', seen['prose'])
            assert raw == [], (notebook, raw[:5])
            # Figures: every image decoded (an image that failed to load has naturalWidth 0).
            assert len(seen['images']) >= 1, notebook
            broken = [i for i in seen['images'] if not (i[0] and i[1] > 0)]
            assert broken == [], (notebook, broken)
            # Links: every relative link leads to a file of the site; none still points at a notebook.
            for href in seen['links']:
                parsed = urlparse(href)
                if parsed.scheme or href.startswith('#'):
                    continue
                target = (page.parent / unquote(parsed.path)).resolve()
                assert target.is_file(), (notebook, href)
                assert target.suffix == '.html', (notebook, href)
            assert _remote_requests(browser) == [], notebook
    finally:
        browser.quit()


def _sidebar_pages(entries):
    for entry in entries:
        if isinstance(entry, str):
            yield entry
        elif 'contents' in entry:
            yield from _sidebar_pages(entry['contents'])
        if isinstance(entry, dict) and 'href' in entry:
            yield entry['href']


def test_sidebar_lists_every_notebook_once():
    "nbs/sidebar.yml (nbdev-docs' sidebar, kept by hand: custom_sidebar = true) lists the notebooks in nbs/."
    sidebar = yaml.safe_load((NBS / 'sidebar.yml').read_text())
    listed = list(_sidebar_pages(sidebar['website']['sidebar']['contents']))
    notebooks = [p.relative_to(NBS).as_posix() for p in course_notebooks(NBS)]
    assert sorted(listed) == sorted(notebooks), (set(listed) ^ set(notebooks))
