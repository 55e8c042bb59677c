"""The real evaluation set: eighteen published documents (tests/real/input/, byte for byte as
found: web pages, browser-printed and WPS/Word PDFs, markdown crawls) against their gold
(tests/real/gold/, see tests/real/README.md), scored by pipeline/evaluation/score.py.

One test per document and check, against the targets: sections F1 ≥ 0.97, responsibilities
≥ 0.95, quantities ≥ 0.92, title and 发文字号 right. PDFs go through the default backend
(pdfplumber). Where a document falls below a target today, the test is a strict xfail naming the
kind of miss (KNOWN_MISSES), so a fix fails the suite until its entry goes. When written: sections
0.571, responsibilities 0.300, quantities 0.329, titles 11/18, 发文字号 12/18.
"""
from __future__ import annotations

import pytest
from conftest import ROOT, check_document, document_cases

from pipeline.evaluation.sets import eval_sets, evaluate

REAL = eval_sets(ROOT)["real"]
FLOORS = {"sections": 0.97, "responsibilities": 0.95, "quantities": 0.92}

HTML = "HTML reader not merged yet (the .html page is refused as unsupported_format)"
HTML_DOCS = ("cn_gob_2018_consumption_poverty_alleviation_opinion", "cn_gob_2018_gov_website_consolidation_pilot_plan",
             "cn_sc_2018_ftz_reform_innovation_measures", "cn_sc_2019_vocational_education_reform_plan",
             "gz_2024_household_housing_security_notice", "gz_th_2026_kindergarten_enrolment_work_plan")
# The checks each page fails for want of a reader: the others pass only because their gold is
# empty (no quantities, no responsibility lines, no 发文字号), and will be real checks once it is read.
HTML_FAILS = {
    "cn_gob_2018_consumption_poverty_alleviation_opinion": ("sections", "responsibilities", "title", "doc_number"),
    "cn_gob_2018_gov_website_consolidation_pilot_plan": ("sections", "quantities", "title", "doc_number"),
    "cn_sc_2018_ftz_reform_innovation_measures": ("sections", "responsibilities", "quantities", "title", "doc_number"),
    "cn_sc_2019_vocational_education_reform_plan": ("sections", "quantities", "title", "doc_number"),
    "gz_2024_household_housing_security_notice": ("sections", "quantities", "title", "doc_number"),
    "gz_th_2026_kindergarten_enrolment_work_plan": ("sections", "quantities", "title"),
}

KANGXI = ("Kangxi radical forms from the PDF's fonts (（⼀）, ⼯, ⼤) are not folded to the ideographs "
          "they stand for")
KNOWN_MISSES = {
    **{(stem, check): HTML for stem, checks in HTML_FAILS.items() for check in checks},
    ("cn_gob_2026_enterprise_credit_evaluation_plan_print", "quantities"):
        "an interval limit (两次评价间隔最长不超过一年) taken as a target",
    ("cn_miit_2021_software_it_services_14th_fyp", "sections"):
        "table of contents (headings with dot leaders and page numbers) taken as the headings",
    ("cn_miit_2021_software_it_services_14th_fyp", "quantities"):
        "indicator table (2015 / 2020 / 2025 columns): the 2020 figures come out as targets, 超过 / 以上 "
        "in its cells is lost",
    ("cn_sc_2015_internet_plus_opinion_print", "sections"): KANGXI + ": headings （⼀） not recognised",
    ("cn_sc_2015_internet_plus_opinion_print", "responsibilities"):
        KANGXI + ": lines under unrecognised headings and names misread; 列第一位者为牵头部门 not applied",
    ("cn_sc_2017_info_consumption_opinion_print", "responsibilities"):
        "annex task table (序号 | 工作任务 | 负责单位) in a PDF: cells wrap across lines, no line per row",
    ("cn_sc_2017_info_consumption_opinion_print", "quantities"):
        "the annex's （有关任务目标截至2020年） does not date a target in the body; a figure from the annex table",
    ("cn_sc_2018_mass_innovation_upgrade_opinion_print", "responsibilities"):
        "等和 (科技部等和各地方人民政府) not split; a bracket line after another parenthesis in the paragraph "
        "(（含技工院校）, （基地）) or after quoted names is missed",
    ("cn_sc_2018_mass_innovation_upgrade_opinion_print", "quantities"):
        "a tax term (加计扣除比例提高到75%: funding in the gold) taken as a target",
    ("sh_2022_agri_mechanization_impl_opinion", "quantities"):
        "percent-escapes of the crawl's 来源 URL (%E8%BF…) read as percentages; “十四五” in the title does "
        "not date the targets (2025)",
    ("sh_2022_agri_mechanization_impl_opinion", "title"):
        "the crawl's markdown title line (without 《》) taken as title, not the document's own",
    ("sh_2025_bci_future_industry_action_plan", "quantities"):
        "到2027年 stage targets dated by the plan period's end (2030); 不少于1000例病例 not read (unit 例)",
    ("sh_2025_food_tech_action_plan", "responsibilities"):
        "a bare list of bodies ending a task (（市科委）) not read as a responsibility line",
    ("sh_2025_food_tech_action_plan", "quantities"):
        "突破1500亿元: 突破 not read as a comparator (>)",
    ("sh_2025_poc_platform_impl_plan", "sections"):
        "the notice's 附件 marker introduces the plan itself: its 一、 nested under 附件 instead of level 1",
    ("sh_2025_poc_platform_impl_plan", "quantities"):
        "最高可至3000万元: 最高可至 not read as ≤",
}


@pytest.fixture(scope="module")
def real_report(tmp_path_factory, rules):
    return evaluate(REAL, rules, tmp_path_factory.mktemp("real"), verbose=True)[None]


def test_every_document_has_gold_and_the_other_way_round():
    assert sorted(p.stem for p in REAL.input_dir.iterdir()) == REAL.stems()


def test_the_pages_not_read_are_the_html_ones(real_report):
    """What the html xfails stand for: every other document is read, every page refused as HTML."""
    not_read = {stem: row["error"][0] for stem, row in real_report["documents"].items() if not row["found"]}
    assert not_read == {stem: "unsupported_format" for stem in HTML_DOCS}
    assert set(HTML_FAILS) == set(HTML_DOCS)


@pytest.mark.parametrize("stem, check", document_cases(REAL.stems(), KNOWN_MISSES))
def test_document(real_report, stem, check):
    check_document(real_report, stem, check, FLOORS)
