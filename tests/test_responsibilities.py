"""Responsibility lines: each form of the genre, the lines that are not one, prefix restoration,
and the five gold seeds (section path, agency_raw, role) matched exactly."""
from __future__ import annotations

import json
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conftest import GOLD_DIR, SEEDS_DIR, STEMS  # noqa: E402

from pipeline.model import Para  # noqa: E402
from pipeline.rules import load_rule_file  # noqa: E402
from pipeline.stages.normalise import paras_to_text  # noqa: E402
from pipeline.stages.responsibilities import (  # noqa: E402
    ResponsibilityRules,
    names_to_agencies,
    sections_to_responsibilities,
)
from pipeline.stages.sections import SectionRules, text_to_sections  # noqa: E402

SEEDS = [SEEDS_DIR / f"{stem}.txt" for stem in STEMS]


@pytest.fixture(scope="module")
def rules() -> ResponsibilityRules:
    obj, problems = load_rule_file(ROOT / "config/responsibilities.yaml", ResponsibilityRules)
    assert problems == []
    return obj


@pytest.fixture(scope="module")
def section_rules() -> SectionRules:
    obj, problems = load_rule_file(ROOT / "config/sections.yaml", SectionRules)
    assert problems == []
    return obj


def run(text: str, rules, section_rules):
    parsed = paras_to_text([Para(line) for line in text.split("\n")], "text", "1")
    sections = text_to_sections(parsed, section_rules)
    return parsed, sections, sections_to_responsibilities(parsed, sections, rules)


def names_roles(text: str, rules, section_rules) -> list[tuple[str, str]]:
    return [(r.agency_raw, r.role) for r in run(text, rules, section_rules)[2]]


def test_rule_file_loads_cleanly():
    """Every rule's examples match and its counter-examples do not."""
    obj, problems = load_rule_file(ROOT / "config/responsibilities.yaml", ResponsibilityRules)
    assert problems == []
    assert obj is not None and len(obj.all_rules()) >= 15


# --- forms ------------------------------------------------------------------------------------

L, P, R = "lead", "participant", "responsible"

FORMS = [
    pytest.param("加快建设。（责任单位：市科技局牵头，市财政局、教育局按职责分工负责）",
                 [("市科技局", L), ("市财政局", P), ("教育局", P)], id="label-lead-duty"),
    pytest.param("加快建设。（省科技厅、工业和信息化厅牵头，省发展改革委按职责分工负责）",
                 [("省科技厅", L), ("工业和信息化厅", L), ("省发展改革委", P)], id="lead-duty"),
    pytest.param("做好工作。(市科技创新委、发展改革委、工业和信息化局按职责分工负责)",
                 [("市科技创新委", R), ("发展改革委", R), ("工业和信息化局", R)], id="halfwidth-no-lead"),
    pytest.param("给予资助。（责任单位：市工业和信息化局）", [("市工业和信息化局", R)], id="label-only"),
    pytest.param("统筹资金。\n牵头单位：省财政厅\n配合单位：省科技厅、江苏省政府投资基金",
                 [("省财政厅", L), ("省科技厅", P), ("江苏省政府投资基金", P)], id="label-paragraphs-fund"),
    pytest.param("重点任务分工如下。\n序号 | 重点任务 | 牵头单位 | 配合单位 | 完成时限\n"
                 "1 | 推进港区建设，新增泊位10个 | 宁波舟山港集团 | 市交通运输局、发展改革委 | \n"
                 "2 | 建设集疏运通道 | 市口岸办 | 宁波海关 | 2026年底前\n本方案自印发之日起施行。",
                 [("宁波舟山港集团", L), ("市交通运输局", P), ("发展改革委", P), ("市口岸办", L), ("宁波海关", P)],
                 id="task-table-pipes"),
    pytest.param("| 序号 | 任务 | 责任单位 |\n|---|---|---|\n| 1 | 建设平台 | 市科技局、市财政局 |\n"
                 "| 2 | 完善政策 | 各区（县、市）人民政府 |",
                 [("市科技局", R), ("市财政局", R), ("各区（县、市）人民政府", R)], id="task-table-markdown"),
    pytest.param("序号\t任务\t牵头部门\n1\t建设平台\t市发展改革委", [("市发展改革委", L)], id="task-table-tabs"),
    pytest.param("给予补贴。\n牵头单位：市商务局\n责任单位：市财政局、市自然资源和规划局",
                 [("市商务局", L), ("市财政局", P), ("市自然资源和规划局", P)], id="duty-paragraph-after-lead"),
    pytest.param("（责任单位：市工业和信息化局、发展改革委，各区政府（新区管委会、深汕特别合作区管委会））",
                 [("市工业和信息化局", R), ("发展改革委", R), ("各区政府", R), ("新区管委会", R),
                  ("深汕特别合作区管委会", R)], id="nested-list-split"),
    pytest.param("（责任单位：市科学技术局牵头，市发展和改革局、各县（市、区）政府按职责分工负责）",
                 [("市科学技术局", L), ("市发展和改革局", P), ("各县（市、区）政府", P)], id="paren-in-name"),
    pytest.param("（牵头单位：市科技局；配合单位：市财政局、教育局）",
                 [("市科技局", L), ("市财政局", P), ("教育局", P)], id="lead-and-participant-labels"),
    pytest.param("一、任务\n牵头单位：市科技局\n配合单位：市财政局、教育局。",
                 [("市科技局", L), ("市财政局", P), ("教育局", P)], id="label-paragraphs"),
    pytest.param("加快建设。牵头单位：市科技局；配合单位：市财政局。",
                 [("市科技局", L), ("市财政局", P)], id="label-after-sentence"),
    pytest.param("（市科技局牵头，市财政局配合）", [("市科技局", L), ("市财政局", P)], id="lead-participant"),
    pytest.param("（市科技局会同市财政局、教育局负责）",
                 [("市科技局", L), ("市财政局", P), ("教育局", P)], id="with"),
    pytest.param("（市科技局负责）", [("市科技局", R)], id="duty-only"),
    pytest.param("（市科技局负责，市财政局配合）", [("市科技局", L), ("市财政局", P)], id="duty-then-participant"),
    pytest.param("（省工业和信息化厅牵头，省住房城乡建设厅等有关部门按职责分工负责）",
                 [("省工业和信息化厅", L), ("省住房城乡建设厅", P)], id="tail-youguan-bumen"),
    pytest.param("（市科技局牵头，市财政局等相关单位按职责分工负责）",
                 [("市科技局", L), ("市财政局", P)], id="tail-xiangguan-danwei"),
    pytest.param("（市科学技术局牵头，各相关单位按职责分工负责）",
                 [("市科学技术局", L), ("各相关单位", P)], id="collective-kept"),
    pytest.param("加强合作。（商务部、财政部等部门\n按职责分工负责）",
                 [("商务部", R), ("财政部", R)], id="wrapped-line"),
    pytest.param("加强合作。（省科技厅牵头，省发展改革委按职责分工负\n\n责）",
                 [("省科技厅", L), ("省发展改革委", P)], id="wrapped-mid-word"),
    pytest.param("（牵头单位：市科技局；配合单位：市财政局；完成时限：2023年底）",
                 [("市科技局", L), ("市财政局", P)], id="other-label-dropped"),
    pytest.param("（2023年底前完成；责任单位：市科技局、财政局）",
                 [("市科技局", R), ("财政局", R)], id="text-before-label-dropped"),
    pytest.param("（市科技局牵头负责，市财政局按照职责分工负责）",
                 [("市科技局", L), ("市财政局", P)], id="role-word-variants"),
]


@pytest.mark.parametrize("text,expected", FORMS)
def test_forms(text, expected, rules, section_rules):
    assert names_roles(text, rules, section_rules) == expected


# --- splitting on 和 --------------------------------------------------------------------------

AND_SPLITS = [
    pytest.param("（责任单位：市科学技术局和各县（市、区）政府牵头，市财政局按职责分工负责）",
                 ["市科学技术局", "各县（市、区）政府", "市财政局"], id="ju-he-gexian"),
    pytest.param("（省科技厅牵头，省财政厅、地方金融监管局和各地级以上市人民政府按职责分工负责）",
                 ["省科技厅", "省财政厅", "地方金融监管局", "各地级以上市人民政府"], id="ju-he-renminzhengfu"),
    pytest.param("（市工业和信息化局、规划和自然资源局、住房和城乡建设局、发展和改革局按职责分工负责）",
                 ["市工业和信息化局", "规划和自然资源局", "住房和城乡建设局", "发展和改革局"], id="he-inside-names"),
    pytest.param("（省人力资源和社会保障厅牵头，省教育厅按职责分工负责）",
                 ["省人力资源和社会保障厅", "省教育厅"], id="renshe"),
    pytest.param("（责任单位：各县级市（区）人民政府（管委会）和市商务局）",
                 ["各县级市（区）人民政府", "管委会", "市商务局"], id="paren-he"),
]


@pytest.mark.parametrize("text,expected", AND_SPLITS)
def test_and_splitting(text, expected, rules, section_rules):
    assert [n for n, _ in names_roles(text, rules, section_rules)] == expected


# --- not responsibility lines -----------------------------------------------------------------

NOT_LINES = [
    pytest.param("由市工业和信息化局牵头建立新材料产业工作专班。", id="body-lead-sentence"),
    pytest.param("本措施由市工业和信息化局负责解释。", id="interpretation-clause"),
    pytest.param("实施“十大行动”（简称“十大行动”），推进建设。", id="jiancheng"),
    pytest.param("《广东省发展规划（2021—2025年）》", id="plan-period"),
    pytest.param("按销售额（不含税）的30%给予支持。", id="buhanshui"),
    pytest.param("相关费用（由市财政局负责解释）。", id="paren-clause"),
    pytest.param("（一）加强组织领导\n加强统筹。", id="heading-marker"),
    pytest.param("各部门要落实责任单位：明确分工。", id="label-mid-sentence"),
    pytest.param("责任单位：各区要高度重视，抓好落实。", id="label-paragraph-of-prose"),
    pytest.param("鼓励企业（含科研院所）参与建设。", id="paren-not-agencies"),
    pytest.param("（企业负责）", id="non-agency-duty"),
    pytest.param("序号 | 重点任务 | 完成时限\n1 | 市财政局安排资金 | 2026年底前", id="table-without-a-unit-column"),
    pytest.param("牵头单位 | 配合单位\n本方案自印发之日起施行。\n市科技局 | 市财政局", id="table-ended-by-prose"),
    pytest.param("相关文件政策观察 | 深圳市培育发展新材料产业集群行动计划", id="breadcrumb"),
]


@pytest.mark.parametrize("text", NOT_LINES)
def test_not_lines(text, rules, section_rules):
    assert names_roles(text, rules, section_rules) == []


# --- first-listed unit leads ------------------------------------------------------------------

def test_lead_first_declared_in_preamble(rules, section_rules):
    text = ("各项任务中排在第一位的部门为牵头部门，下同。\n一、任务\n"
            "加快建设。（市科技局、财政局、教育局按职责分工负责）\n"
            "做好保障。（市财政局牵头，市科技局配合）")
    assert names_roles(text, rules, section_rules) == [
        ("市科技局", L), ("财政局", P), ("教育局", P),
        ("市财政局", L), ("市科技局", P),  # a line that names its lead keeps it
    ]


def test_lead_first_declared_inside_the_line(rules, section_rules):
    text = "（责任单位：市发展改革委、科技局，列第一位者为牵头单位）"
    rows = run(text, rules, section_rules)[2]
    assert [(r.agency_raw, r.role, r.rule_id) for r in rows] == [
        ("市发展改革委", L, "lead_first"), ("科技局", P, "lead_first")]


def test_lead_first_only_for_later_lines(rules, section_rules):
    text = "（市科技局、财政局按职责分工负责）\n排在第一位的部门为牵头部门。\n（市教育局、财政局按职责分工负责）"
    assert names_roles(text, rules, section_rules) == [
        ("市科技局", R), ("财政局", R), ("市教育局", L), ("财政局", P)]


# --- prefix restoration -----------------------------------------------------------------------

PREFIXES = [
    pytest.param(["市科学技术局", "市发展和改革局", "工业和信息化局"],
                 ["市科学技术局", "市发展和改革局", "市工业和信息化局"], id="city"),
    pytest.param(["省科技厅", "省发展改革委", "工业和信息化厅"],
                 ["省科技厅", "省发展改革委", "省工业和信息化厅"], id="province"),
    pytest.param(["市科学技术局", "各县（市、区）政府", "广东海洋大学", "湛江湾实验室", "财政局"],
                 ["市科学技术局", "各县（市、区）政府", "广东海洋大学", "湛江湾实验室", "市财政局"],
                 id="complete-names-kept-and-transparent"),
    pytest.param(["市工业和信息化局", "深圳银保监局", "银保监局", "市委外办"],
                 ["市工业和信息化局", "深圳银保监局", "市银保监局", "市委外办"], id="local-branch-party"),
    pytest.param(["市自然资源局", "市场监督管理局", "城市更新局"],
                 ["市自然资源局", "市市场监督管理局", "市城市更新局"], id="shichang-chengshi-not-levels"),
    pytest.param(["深圳市税务局", "财政局"], ["深圳市税务局", "深圳市财政局"], id="place-name"),
    pytest.param(["区发展改革局", "罗湖区人民政府", "各区政府", "新区管委会", "教育局"],
                 ["区发展改革局", "罗湖区人民政府", "各区政府", "新区管委会", "区教育局"], id="district"),
    pytest.param(["发展改革委", "财政局"], ["发展改革委", "财政局"], id="no-prefix-anywhere"),
    pytest.param(["省市场监督管理局", "科技厅"], ["省市场监督管理局", "省科技厅"], id="sheng-shichang"),
]


@pytest.mark.parametrize("names,expected", PREFIXES)
def test_names_to_agencies(names, expected, rules):
    assert names_to_agencies(names, rules) == expected


def test_agency_restored_across_lead_and_participants(rules, section_rules):
    text = "（责任单位：市科学技术局牵头，市发展和改革局、工业和信息化局按职责分工负责）"
    rows = run(text, rules, section_rules)[2]
    assert [(r.agency_raw, r.agency) for r in rows] == [
        ("市科学技术局", "市科学技术局"), ("市发展和改革局", "市发展和改革局"),
        ("工业和信息化局", "市工业和信息化局")]


# --- record fields ----------------------------------------------------------------------------

def test_fields_offsets_section_position(rules, section_rules):
    text = ("前言（市科技局负责）\n一、任务\n（一）建设平台\n加快建设。（责任单位：市科技局牵头，\n"
            "市财政局按职责分工负责）")
    parsed, sections, rows = run(text, rules, section_rules)
    pre, *task = rows
    assert pre.section_id is None and pre.agency_raw == "市科技局"
    assert parsed.text[pre.start:pre.end] == "（市科技局负责）"
    sec = {s.section_id: s.path for s in sections}
    assert [sec[r.section_id] for r in task] == ["一/（一）", "一/（一）"]
    assert [r.position for r in task] == [0, 1]
    line = task[0]
    assert parsed.text[line.start:line.end] == "（责任单位：市科技局牵头，\n市财政局按职责分工负责）"
    assert line.line_raw == "（责任单位：市科技局牵头，市财政局按职责分工负责）"
    assert {r.rule_id for r in task} == {"role_lead", "role_duty"}
    rule_ids = {r.id for r in rules.all_rules()}
    assert all(r.rule_id in rule_ids for r in rows)


# --- gold seeds -------------------------------------------------------------------------------

def _fold(s: str) -> str:
    return "".join(unicodedata.normalize("NFKC", s).split())


@pytest.mark.parametrize("seed", SEEDS, ids=[p.stem for p in SEEDS])
def test_gold_seed(seed, rules, section_rules):
    text = seed.read_text(encoding="utf-8")
    _, sections, rows = run(text, rules, section_rules)
    path = {s.section_id: s.path for s in sections}
    got = Counter((_fold(path.get(r.section_id, "")), _fold(r.agency_raw), r.role) for r in rows)
    gold = json.loads((GOLD_DIR / f"{seed.stem}.json").read_text(encoding="utf-8"))
    want = Counter((_fold(line["section"]), _fold(name), role)
                   for line in gold["responsibilities"]
                   for role in ("lead", "participant", "responsible")
                   for name in line[role])
    assert got - want == Counter() and want - got == Counter(), (
        f"missing {sorted((want - got).elements())}, extra {sorted((got - want).elements())}")


def test_a_task_table_in_a_word_file_gives_a_line_per_row(tmp_path, rules, section_rules):
    """A real .docx table (python-docx): the reader keeps its columns apart, the header names them."""
    import docx

    from pipeline.readers import ReaderOptions
    from pipeline.stages.read import file_to_text

    d = docx.Document()
    d.add_paragraph("一、重点任务")
    d.add_paragraph("附件：重点任务分工表")
    rows = [("序号", "重点任务", "牵头单位", "配合单位", "完成时限"),
            ("1", "建设海铁联运通道", "市交通运输局", "市发展改革委、宁波舟山港集团", "2026年底前"),
            ("2", "培育物流企业", "市商务局", "市市场监管局", "持续推进")]
    table = d.add_table(rows=len(rows), cols=len(rows[0]))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            table.cell(i, j).text = value
    path = tmp_path / "tasks.docx"
    d.save(path)
    parsed = file_to_text(path, "docx", ReaderOptions())
    got = [(r.agency_raw, r.role) for r in sections_to_responsibilities(parsed, text_to_sections(parsed, section_rules), rules)]
    assert got == [("市交通运输局", L), ("市发展改革委", P), ("宁波舟山港集团", P), ("市商务局", L), ("市市场监管局", P)]
