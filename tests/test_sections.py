"""Section segmentation: the seed drafts segment as annotated, and each numbering rule of the guide."""
from __future__ import annotations

import pytest
from conftest import STEMS, fold, fold_path, gold, seed_text

from pipeline.model import Para
from pipeline.stages.normalise import paras_to_text
from pipeline.stages.sections import path_part, text_to_sections


def segment(lines, rules):
    parsed = paras_to_text([Para(x) for x in lines], "text", "test")
    return [(s.path, s.level, s.heading) for s in text_to_sections(parsed, rules["sections.yaml"])]


@pytest.mark.parametrize("stem", STEMS)
def test_seed_sections_match_gold(stem, rules):
    g = gold(stem)
    secs = text_to_sections(seed_text(stem), rules["sections.yaml"])
    got = sorted((fold_path(s.path), fold(s.heading)[:12], s.level) for s in secs)
    want = sorted((fold_path(s["path"]), fold(s["heading"])[:12], s["level"]) for s in g["sections"])
    assert got == want


def test_heading_with_body_on_the_same_line(rules):
    assert segment(["（一）发展现状。近年来，我市产业快速增长。"], rules) == [("（一）", 1, "发展现状")]


def test_document_may_start_at_second_family(rules):
    got = segment(["（一）总体思路", "正文。", "1.提高能力。正文", "（二）总体目标"], rules)
    assert got == [("（一）", 1, "总体思路"), ("（一）/1", 2, "提高能力"), ("（二）", 1, "总体目标")]


def test_drafting_slip_takes_the_family_it_fills(rules):
    got = segment(["1、 总体情况", "（一）发展现状。", "1.三大优势。", "二、工作目标", "三、重点任务"], rules)
    assert [(p, lv) for p, lv, _ in got] == [("1", 1), ("1/（一）", 2), ("1/（一）/1", 3), ("二", 1), ("三", 1)]


def test_count_running_across_parents_nests_under_the_heading_above(rules):
    got = segment(["一、甲", "（一）子一", "（二）子二", "二、乙", "（三）子三", "（四）子四"], rules)
    assert [p for p, _, _ in got] == ["一", "一/（一）", "一/（二）", "二", "二/（三）", "二/（四）"]


def test_box_is_child_of_its_section_and_its_items_its_children(rules):
    got = segment(["一、任务", "（一）布局。正文。", "专栏 2：重点产品", "1. 光刻胶。", "2. 靶材。",
                   "（二）体系。正文。"], rules)
    assert got == [("一", 1, "任务"), ("一/（一）", 2, "布局"), ("一/（一）/专栏2", 3, "重点产品"),
                   ("一/（一）/专栏2/1", 4, "光刻胶"), ("一/（一）/专栏2/2", 4, "靶材"),
                   ("一/（二）", 2, "体系")]


def test_circled_items_nest_under_the_item_above_and_count(rules):
    got = segment(["一、任务", "（1）基础研究。正文。", "①支持高校建设研究平台。", "②支持企业组建联合体。",
                   "⑩ 第十项", "（2）关键软硬件。"], rules)
    # ⑩ breaks the count after ② (body text); （2） closes the circled list.
    assert got == [("一", 1, "任务"), ("一/（1）", 2, "基础研究"), ("一/（1）/①", 3, "支持高校建设研究平台"),
                   ("一/（1）/②", 3, "支持企业组建联合体"), ("一/（2）", 2, "关键软硬件")]


def test_a_box_after_a_numbered_item_has_its_own_list(rules):
    got = segment(["一、任务", "（一）体系", "1．提升能力。正文。", "2．统筹布局。正文。", "专栏1 重点工程",
                   "1．港口示范工程。", "2．干线示范工程。", "3．产业化工程。", "3．交通领域。正文。", "（二）应用",
                   "1．交通。"], rules)
    # the box belongs to （一）, which the items are in, and the items' list goes on after it
    assert [p for p, _, _ in got] == ["一", "一/（一）", "一/（一）/1", "一/（一）/2", "一/（一）/专栏1",
                                      "一/（一）/专栏1/1", "一/（一）/专栏1/2", "一/（一）/专栏1/3",
                                      "一/（一）/3", "一/（二）", "一/（二）/1"]
    # the list around the box goes on with its next number even where the box's count could too
    got = segment(["一、任务", "（一）体系", "1．甲。", "2．乙。", "3．丙。", "专栏1 工程", "1．子一。", "2．子二。",
                   "4．丁。"], rules)
    assert [p for p, _, _ in got][-3:] == ["一/（一）/专栏1/1", "一/（一）/专栏1/2", "一/（一）/4"]
    # with no section above the items to hold it, the box stays in the item it follows
    got = segment(["1．甲。", "2．乙。", "专栏1 工程", "1．子一。"], rules)
    assert [p for p, _, _ in got] == ["1", "2", "2/专栏1", "2/专栏1/1"]


def test_annex_returns_to_top_level(rules):
    got = segment(["一、任务", "（一）布局", "附件1 产业链图谱"], rules)
    assert got[-1] == ("附件1", 1, "产业链图谱")


def test_an_annex_label_alone_takes_the_line_below_as_heading(rules):
    got = segment(["一、任务", "（一）布局", "1、甲", "附件", "重点项目清单", "1、足球中心项目。总投资50亿元。"], rules)
    assert got[-2:] == [("附件", 1, "重点项目清单"), ("附件/1", 2, "足球中心项目")]
    got = segment(["一、任务", "附件：", "1、足球中心项目。"], rules)  # the next line is a heading itself
    assert got[-2:] == [("附件", 1, ""), ("附件/1", 2, "足球中心项目")]


@pytest.mark.parametrize("line", [
    "一是加快突破关键技术，二是完善平台。",
    "——支持企业建设研发机构。",
    "新型研发机构：围绕产业需求建设。",
    "2025年，产业规模达到1000亿元。",
    "1.67亿吨水泥产量位居全国前列。",
    "5G通信关键材料",
])
def test_not_headings(line, rules):
    assert segment(["一、总体", line], rules) == [("一", 1, "总体")]


def test_marker_that_breaks_the_count_is_body_text(rules):
    # a line that happens to start with "5." right after item 1 does not continue the count.
    got = segment(["一、总体", "1.第一项。", "5.以上企业按规定享受政策。", "2.第二项。"], rules)
    assert [p for p, _, _ in got] == ["一", "一/1", "一/2"]


@pytest.mark.parametrize("label,part", [("一、", "一"), ("（一）", "（一）"), ("1.", "1"),
                                        ("专栏 2", "专栏2"), ("1．", "1"), ("附件1", "附件1")])
def test_path_parts(label, part):
    assert path_part(label) == part
