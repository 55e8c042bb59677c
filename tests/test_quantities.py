"""Quantities: each rule family on sentences of the genre, then the five gold seeds.

The seed test scores like pipeline/evaluation/score.py: per document, the multiset of keys
(kind, year, comparator, value, value_max, NFKC-folded unit), `kind: term` ignored.
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter

import pytest
from conftest import GOLD_DIR, ROOT, SEEDS_DIR, STEMS

from pipeline.model import DocumentMeta, Para
from pipeline.rules import load_rule_file
from pipeline.stages.normalise import paras_to_text
from pipeline.stages.quantities import QuantityRules, numeral_to_float, sections_to_quantities, unit_to_base
from pipeline.stages.sections import SectionRules, text_to_sections

MIN_F1 = 0.97


@pytest.fixture(scope="module")
def qrules() -> QuantityRules:
    obj, problems = load_rule_file(ROOT / "config" / "quantities.yaml", QuantityRules)
    assert not problems, problems
    return obj


@pytest.fixture(scope="module")
def srules() -> SectionRules:
    obj, problems = load_rule_file(ROOT / "config" / "sections.yaml", SectionRules)
    assert not problems, problems
    return obj


def extract(text: str, qrules, srules, period: tuple[int, int] | None = None):
    parsed = paras_to_text([Para(line) for line in text.split("\n")], "text", "1")
    sections = text_to_sections(parsed, srules)
    meta = DocumentMeta(period_start=period[0] if period else None, period_end=period[1] if period else None)
    return parsed, sections_to_quantities(parsed, sections, meta, qrules)


def shape(q) -> tuple:
    return (q.comparator, q.value, q.value_max, q.unit)


def shapes(text, qrules, srules, period=None) -> list[tuple]:
    return [shape(q) for q in extract(text, qrules, srules, period)[1] if q.kind != "term"]


# ---------------------------------------------------------------------------------------------
# The rule file


def test_every_rule_has_examples_and_counter_examples(qrules):
    for rule in qrules.all_rules():
        assert rule.examples and rule.counter_examples, rule.id
        assert not rule.example_failures(), (rule.id, rule.example_failures())


def test_macros_are_all_expanded(qrules):
    for rule in qrules.all_rules():
        assert "<<" not in rule.pattern, rule.id


# ---------------------------------------------------------------------------------------------
# Rule families on sentences of the genre (none taken from the seeds)

COMPARATORS = [
    ("到2025年，全市产值达到800亿元。", ("=", 800, None, "亿元")),
    ("到2025年，培育龙头企业20家以上。", (">=", 20, None, "家")),
    ("到2025年，新增企业不少于30家。", (">=", 30, None, "家")),
    ("到2025年，营业收入超过 1200 亿元以上。", (">=", 1200, None, "亿元")),
    ("到2025年，产值超过300亿元。", (">", 300, None, "亿元")),
    ("到2025年，产值超800亿元。", (">", 800, None, "亿元")),
    ("到2025年，增速高于8%。", (">", 8, None, "%")),
    ("单个项目补助不超过200万元。", ("<=", 200, None, "万元")),
    ("给予最高1000万元奖励。", ("<=", 1000, None, "万元")),
    ("每年奖励金额最高不超过800万元。", ("<=", 800, None, "万元")),
    ("补贴资金控制在50万元以内。", ("<=", 50, None, "万元")),
    ("到2025年，能耗低于0.5吨标准煤。", ("<", 0.5, None, "吨标准煤")),
    ("到2025年，不良率少于3%。", ("<", 3, None, "%")),
    ("到2025年，产业规模接近2000亿元。", ("~", 2000, None, "亿元")),
    ("到2025年，产值约600亿元。", ("~", 600, None, "亿元")),
    ("到2025年，年均增长10%左右。", ("~", 10, None, "%")),
    ("按不超过项目总投资的20%给予补助。", ("<=", 20, None, "%")),
    ("按实际发生费用的50%给予补助。", ("=", 50, None, "%")),
    ("贴息期限最长2年。", ("<=", 2, None, "年")),
    ("对投资额达到1000万元（含）以上的项目给予补助。", (">=", 1000, None, "万元")),
    # units of the genre's newer fields
    ("到2025年，全市智能算力规模达到3000PFlops以上。", (">=", 3000, None, "PFlops")),
    ("到2025年，储能电池循环寿命达到12000次以上。", (">=", 12000, None, "次")),
    ("每年发布应用场景清单不少于2批次。", (">=", 2, None, "批次")),
    ("给予一次性奖励50万元。", ("=", 50, None, "万元")),  # 一次性 is a word
    ("到2025年，建成国家级海洋牧场示范区25处以上。", (">=", 25, None, "处")),
    ("新投放人工鱼礁50万空方。", ("=", 50, None, "万空方")),
    ("对新引进的总部企业，连续3年给予租金补贴。", ("=", 3, None, "年")),
    ("到2025年，可再生能源制氢能力达到1万吨/年左右。", ("~", 1, None, "万吨/年")),
    ("到2026年，集装箱吞吐量达到4000万标准箱。", ("=", 4000, None, "万标准箱")),
    ("2023年，单位工业增加值能耗1.33吨标准煤/万元。", ("=", 1.33, None, "吨标准煤/万元")),
    ("到2025年，新建社会足球场地50块。", ("=", 50, None, "块")),
    ("到2025年，举办赛事1000场次以上。", (">=", 1000, None, "场次")),
    ("到2026年，整体通关时间压缩至24小时以内。", ("<=", 24, None, "小时")),  # but 24小时在线 is no figure
]


@pytest.mark.parametrize("text,expected", COMPARATORS)
def test_comparators(text, expected, qrules, srules):
    assert shapes(text, qrules, srules) == [expected]


CHINESE = [
    ("支持年限一般不超过三年。", ("<=", 3, None, "年")),
    ("到2025年，建设两个产业基地。", ("=", 2, None, "个")),
    ("到2025年，培育五家领军企业。", ("=", 5, None, "家")),
    ("到2025年，形成百亿级新能源产业集群。", (">=", 100, None, "亿元")),
    ("到2025年，打造千亿级产业集群。", (">=", 1000, None, "亿元")),
    ("到2025年，形成千万吨级炼化能力。", (">=", 1000, None, "万吨")),
    ("到2025年，形成千万吨炼油能力。", ("=", 1000, None, "万吨")),
    ("到2025年，产业规模翻一番。", ("=", 1, None, "番")),
    ("到2025年，出口额翻两番。", ("=", 2, None, "番")),
    ("到2025年，产值突破十二亿元。", ("=", 12, None, "亿元")),
    ("百分之三十的资金用于人才引进。", ("=", 30, None, "%")),
]


@pytest.mark.parametrize("text,expected", CHINESE)
def test_chinese_numerals(text, expected, qrules, srules):
    assert shapes(text, qrules, srules) == [expected]


@pytest.mark.parametrize("s,value", [("五", 5), ("十二", 12), ("百", 100), ("千", 1000), ("两", 2),
                                     ("1,200", 1200), ("5039.8", 5039.8), ("３０", 30)])
def test_numeral_to_float(s, value):
    assert numeral_to_float(s) == value


RANGES = [
    ("到2025年，力争建成1-2个国家级创新中心。", ("range", 1, 2, "个")),
    ("到2025年，建设3～5个公共服务平台。", ("range", 3, 5, "个")),
    ("到2025年，培育3至5家上市企业。", ("range", 3, 5, "家")),
    ("到2025年，打造两到三个产业园区。", ("range", 2, 3, "个")),
    ("到2025年，利润率提高到10%-15%。", ("range", 10, 15, "%")),
]


@pytest.mark.parametrize("text,expected", RANGES)
def test_ranges(text, expected, qrules, srules):
    assert shapes(text, qrules, srules) == [expected]


LISTS = [
    ("到2025年，覆盖率和合作率分别达到65%和55%。", [("=", 65, None, "%"), ("=", 55, None, "%")]),
    ("对国际标准、国家标准、行业标准分别给予不超过100万元、50万元、30万元资助。",
     [("<=", 100, None, "万元"), ("<=", 50, None, "万元"), ("<=", 30, None, "万元")]),
    ("到2025年，建成5\n个产业基地和7个特色产业园。", [("=", 5, None, "个"), ("=", 7, None, "个")]),
]


@pytest.mark.parametrize("text,expected", LISTS)
def test_lists(text, expected, qrules, srules):
    assert shapes(text, qrules, srules) == expected


def test_list_items_take_their_own_metric(qrules, srules):
    _, qs = extract("对国际标准、国家标准、行业标准分别给予不超过100万元、50万元、30万元资助。", qrules, srules)
    assert [q.metric for q in qs] == ["国际标准", "国家标准", "行业标准"]


RATIOS = [
    ("按不超过1∶1的比例给予配套。", ("<=", 1, None, "比例")),
    ("按1:1比例配套支持。", ("=", 1, None, "比例")),
    ("按1：0.5的比例配套。", ("=", 0.5, None, "比例")),
]


@pytest.mark.parametrize("text,expected", RATIOS)
def test_ratio(text, expected, qrules, srules):
    assert shapes(text, qrules, srules) == [expected]


RATES = [
    ("对高标准农田建设每亩补助1500元。", ("=", 1500, None, "元/亩")),
    ("按300元/吨给予补贴。", ("=", 300, None, "元/吨")),
    ("每年度资助金额最高不超过1500万元。", ("<=", 1500, None, "万元")),  # 每年度 is no rate
    ("对新开航线，每标准箱补助100元。", ("=", 100, None, "元/标准箱")),
    ("对节能量按每吨标准煤200元给予奖励。", ("=", 200, None, "元/吨标准煤")),
]


@pytest.mark.parametrize("text,expected", RATES)
def test_rates(text, expected, qrules, srules):
    assert shapes(text, qrules, srules) == [expected]


EXCLUDED = [
    "到2025年，全面完成目标任务。",  # a year standing alone
    "“十三五”期间成效显著，“十四五”时期加快发展。",
    "加快5G基站建设，发展3D打印材料。",
    "围绕“20+8”产业集群和“1+N”政策体系，服务“一带一路”建设。",
    "一是加强组织领导，二是强化要素保障。",
    "依据粤府函〔2020〕82号文件精神。",
    "请于6月30日前报送，本办法自2023年1月1日起施行。",
    "印发《某某行动计划（2021-2025年）》，实施期为2021—2025年。",
    "未来5~15年是关键期，近三年发展迅速，连续两年增长。",
    "聚焦七大领域，实施十大工程，全国排名第二。",
    "实施三年行动计划，推行一企一策，服务千家万户。",
    "建设一批创新平台，进一步提升统一大市场水平。",
    "数十家企业上市，涉及6大类19中类。",
    "基本形成“三个一批”的发展格局，打造“一核两带”布局。",
    "联系电话：0755-88123456。",
    "承担集团研发、销售、结算等一项或多项职能。",
    "推动形成“引回一个总部、带动一个产业”的良好效应。",
]


@pytest.mark.parametrize("text", EXCLUDED)
def test_exclusions(text, qrules, srules):
    assert shapes(text, qrules, srules) == []


QUALIFIERS = [
    # a figure that only says which things are counted belongs to the metric
    ("到2025年，培育产值超50亿的龙头企业5家。", [("=", 5, None, "家")]),
    ("对年营业收入首次突破10亿元、50亿元的企业，分别给予100万元、300万元奖励。",
     [("=", 100, None, "万元"), ("=", 300, None, "万元")]),
    ("按照一年内任意三个销售合同累计销售额的30%给予支持。", [("=", 30, None, "%")]),
    ("到2025年，形成2-3个千亿级产业集群。", [("range", 2, 3, "个")]),
    ("到2025年，培育2个以上千亿级产业集群。", [(">=", 2, None, "个")]),
    ("力争培育千亿级企业1—2个、百亿级企业15家以上。", [("range", 1, 2, "个"), (">=", 15, None, "家")]),
    ("实缴注册资本1亿元以上不足5亿元的，给予一次性奖励500万元。", [("=", 500, None, "万元")]),
    # …and one that counts nothing is a target of its own
    ("集成电路产业规模迈上百亿级台阶。", [(">=", 100, None, "亿元")]),
    ("到2027年，年营业收入超1000亿元的2个，超500亿元的5个、超300亿元的20个。",
     [("=", 2, None, "个"), ("=", 5, None, "个"), ("=", 20, None, "个")]),
    # but a figure the thing is built to reach is a target of its own
    ("到2025年，形成1个年收入达3000亿元以上、增加值达700亿元的产业集群。",
     [("=", 1, None, "个"), (">=", 3000, None, "亿元"), ("=", 700, None, "亿元")]),
]


@pytest.mark.parametrize("text,expected", QUALIFIERS)
def test_qualifiers(text, expected, qrules, srules):
    assert shapes(text, qrules, srules) == expected


KINDS = [
    # (text, period, expected (kind, year) per figure)
    ("到2027年，全市产值达到900亿元。", None, [("target", 2027)]),
    ("力争到“十四五”末，建成10个示范园区。", None, [("target", 2025)]),
    ("一、发展目标\n培育专精特新企业100家。", (2023, 2025), [("target", 2025)]),
    ("一、工作目标\n到2026年，主要目标如下。\n（一）规模\n产值达到500亿元。", None, [("target", 2026)]),
    ("一、发展现状\n2022年，全市产值达到320亿元，同比增长8.5%。", (2023, 2025),
     [("baseline", 2022), ("baseline", 2022)]),
    ("一、发展现状\n2022年全市产值320亿元。规上企业120家。", (2023, 2025),
     [("baseline", 2022), ("baseline", 2022)]),
    ("截至2022年底，累计建成创新平台8个。", None, [("baseline", 2022)]),
    ("一、发展基础\n我市拥有规上企业300家。", (2023, 2025), [("baseline", None)]),
    ("一、重点任务\n（一）夯实发展基础\n智能算力规模达到3000PFlops以上。", None, [("target", None)]),
    ("一、重点任务\n专栏1 氢能基础设施重点工程\n建设加氢站4座。", (2023, 2030), [("target", 2030)]),
    # with no plan period nor date, a bare year before a later target year is where things start
    ("一、主要目标\n2023年，进出口2.38万亿元，增长15.6%。到2027年，进出口达到3.5万亿元。", None,
     [("baseline", 2023), ("baseline", 2023), ("target", 2027)]),
    ("一、发展目标\n2025年，产值达到500亿元。", None, [("target", 2025)]),
    # a deadline dates its own sentence, not the next one
    ("2024年底前，完成培训1000人。持证上岗率达到100%。", (2023, 2030), [("target", 2024), ("target", 2030)]),
    ("对认定的创新中心给予500万元奖励。", (2023, 2025), [("funding", None)]),
    ("支持组建不少于3家单位的创新联合体。", None, [("funding", None)]),
    ("支持依托龙头企业的相关单位，围绕关键环节形成不少于3家单位的联合体。", None, [("funding", None)]),
    # a count that a later clause sets out to reach is a goal, whatever supports it
    ("支持各地开展示范应用，遴选100个以上典型应用场景。", None, [("target", None)]),
    ("支持职业院校开设相关专业，每年培养技能人才1万人。", None, [("target", None)]),
    ("支持企业开展智能化改造，单个项目最高补贴500万元。", None, [("funding", None)]),
    ("鼓励担保机构为企业提供融资担保，担保费率不高于1%。", None, [("funding", None)]),
    # who qualifies for a support: its conditions
    ("一、适用范围\n（一）综合型总部。上年度营业收入不低于10亿元，分支机构不少于3个。", (2023, 2025),
     [("funding", None), ("funding", None)]),
    # a status word in a heading under a goal heading describes the goal
    ("一、发展目标\n（一）具体目标\n1.转型成效明显。数控化率达到70%，能耗下降15%。", (2023, 2027),
     [("target", 2027), ("target", 2027)]),
    ("本办法有效期5年。", None, [("term", None)]),
]


@pytest.mark.parametrize("text,period,expected", KINDS)
def test_kind_and_year(text, period, expected, qrules, srules):
    _, qs = extract(text, qrules, srules, period)
    assert [(q.kind, q.year) for q in qs] == expected


@pytest.mark.parametrize("value,unit,base", [
    (550, "亿元", (5.5e10, "元")),
    (1.67, "亿吨", (1.67e8, "吨")),
    (5039.8, "万件", (5.0398e7, "件")),
    (9997.96, "万重量箱", (9.99796e7, "重量箱")),
    (30, "%", (0.3, "1")),
    (5, "家", (5, "家")),
    (2, "千万元", (2e7, "元")),
    (10, "千瓦", (10, "千瓦")),  # 千瓦 is a unit, not 千 × 瓦
    (50, "亿", (5e9, None)),  # the base unit of a bare magnitude is not written
    (300, "万元/亩", (3e6, "元/亩")),
])
def test_value_base(value, unit, base, qrules):
    got = unit_to_base(value, unit, qrules.units)
    assert got[0] == pytest.approx(base[0]) and got[1] == base[1]


def test_offsets_point_into_the_text_across_line_wraps(qrules, srules):
    parsed, qs = extract("到2025年，培育建成 5\n个产业基地和7个特色产业园。", qrules, srules)
    assert [q.raw for q in qs] == ["5\n个", "7个"]
    for q in qs:
        assert parsed.text[q.start:q.end] == q.raw


def test_sections_and_metrics(qrules, srules):
    text = "一、工作目标\n（一）总体目标\n到2025年，产业营业收入达到10亿元，新增3家以上高新技术企业。"
    parsed, qs = extract(text, qrules, srules)
    assert [q.metric for q in qs] == ["产业营业收入", "高新技术企业"]
    sections = text_to_sections(parsed, srules)
    assert {q.section_id for q in qs} == {sections[1].section_id}
    assert all(q.rule_id == "arabic" for q in qs)


# ---------------------------------------------------------------------------------------------
# The five gold seeds


def fold(s) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(s or "")))


def num(x):
    return None if x is None else round(float(x), 6)


def title_period(title: str) -> tuple[int, int] | None:
    m = re.search(r"[（(]\s*((?:19|20)\d\d)\s*[-—–－~～至]\s*((?:19|20)\d\d)\s*年\s*[）)]", title or "")
    return (int(m[1]), int(m[2])) if m else None


def seed_keys(stem: str, qrules, srules) -> tuple[Counter, Counter, list]:
    g = json.loads((GOLD_DIR / f"{stem}.json").read_text(encoding="utf-8"))
    text = (SEEDS_DIR / f"{stem}.txt").read_text(encoding="utf-8-sig")
    _, qs = extract(text, qrules, srules, title_period(g["title"]))
    gold = Counter((q["kind"], q.get("year"), q["comparator"], num(q["value"]), num(q.get("value_max")),
                    fold(q["unit"])) for q in g["quantities"] if q["kind"] != "term")
    pred = Counter((q.kind, q.year, q.comparator, num(q.value), num(q.value_max), fold(q.unit))
                   for q in qs if q.kind != "term")
    return gold, pred, qs


def prf(gold: Counter, pred: Counter) -> tuple[int, int, int, float]:
    tp, npred, ngold = sum((gold & pred).values()), sum(pred.values()), sum(gold.values())
    p = tp / npred if npred else float(ngold == 0)
    r = tp / ngold if ngold else 1.0
    return tp, npred, ngold, (2 * p * r / (p + r) if p + r else 0.0)


@pytest.mark.parametrize("stem", STEMS)
def test_seed_f1(stem, qrules, srules):
    gold, pred, qs = seed_keys(stem, qrules, srules)
    tp, npred, ngold, f = prf(gold, pred)
    report = [f"{stem}: P {tp}/{npred} R {tp}/{ngold} F1 {f:.3f}"]
    report += [f"  missed {k}" for k in (gold - pred).elements()]
    report += [f"  extra  {k} raw={next(q.raw for q in qs if (q.kind, q.year, q.comparator, num(q.value), num(q.value_max), fold(q.unit)) == k)!r}"
               for k in (pred - gold).elements()]
    print("\n".join(report))
    assert f >= MIN_F1, "\n".join(report)


def test_seed_f1_overall(qrules, srules):
    tot = Counter()
    for stem in STEMS:
        gold, pred, _ = seed_keys(stem, qrules, srules)
        tot["tp"] += sum((gold & pred).values())
        tot["pred"] += sum(pred.values())
        tot["gold"] += sum(gold.values())
    p, r = tot["tp"] / tot["pred"], tot["tp"] / tot["gold"]
    f = 2 * p * r / (p + r)
    print(f"overall quantities: P {p:.3f} R {r:.3f} F1 {f:.3f}")
    assert f >= MIN_F1


def test_full_width_digits_are_numbers_and_years(qrules, srules):
    _, qs = extract("到２０２７年，产值达到８００亿元，占比３０％。", qrules, srules)
    assert [(q.kind, q.year, q.value, q.unit) for q in qs] == [("target", 2027, 800, "亿元"), ("target", 2027, 30, "%")]
