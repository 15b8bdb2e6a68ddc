"""kv-planner dashboard: `streamlit run app.py` (or `make run`).

Sets up the page, draws the shared sidebar (dashboard/state.py) and routes to one file per page
under dashboard/pages/. Every page is a thin layer over planner.api.
"""

import streamlit as st

from dashboard import i18n, state
from dashboard.i18n import t

# The page icon is an emoji: Streamlit draws it as an inline SVG. A ":material/...:" page icon would be
# fetched from fonts.gstatic.com on every load, and the app makes no request outside its own server
# (the other material icons come from the font bundled with Streamlit; tests/test_browser.py checks).
st.set_page_config(page_title="kv-planner", page_icon="🧮", layout="wide")

i18n.init()  # the language first: the page titles below are in it
PAGES = [
    st.Page("dashboard/pages/plan.py", title=t("Plan one deployment"), icon=":material/calculate:", default=True),
    st.Page("dashboard/pages/tradeoffs.py", title=t("Trade-offs"), icon=":material/show_chart:"),
    st.Page("dashboard/pages/attention.py", title=t("Attention & KV cache"), icon=":material/view_in_ar:"),
    st.Page("dashboard/pages/quantization.py", title=t("Quantization"), icon=":material/compress:"),
    st.Page("dashboard/pages/engine.py", title=t("Engine KV pool"), icon=":material/memory:"),
    st.Page("dashboard/pages/capacity.py", title=t("Capacity plan"), icon=":material/dns:"),
    st.Page("dashboard/pages/compare.py", title=t("Compare plans"), icon=":material/compare_arrows:"),
    st.Page("dashboard/pages/validation.py", title=t("Validation"), icon=":material/fact_check:"),
    st.Page("dashboard/pages/learn.py", title=t("Learn"), icon=":material/school:"),
]

# a compact top: the plan's status and key figures fit a 1280x720 screen (Streamlit pads 6rem above a page)
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.2rem;padding-bottom:2rem}"
        "h1{font-size:2rem !important;padding-top:0 !important;padding-bottom:0.25rem !important}"
        "[data-testid='stMetricValue']{font-size:1.5rem}"
        "[data-testid='stMetricLabel'] p{white-space:normal !important}</style>")

page = st.navigation(PAGES)
if not state.model_names() or not state.gpu_ids():
    st.error(t("No bundled profiles found under profiles/models or profiles/gpus: the planner has nothing to plan with."))
    st.stop()
state.sidebar()
for w in st.session_state.pop("_qp_warnings", []):
    st.warning(w, icon=":material/link_off:")
page.run()
