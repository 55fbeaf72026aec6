"""Every message the console can show has a Simplified Chinese translation."""

from __future__ import annotations

from anju.web import i18n, i18n_catalog


def test_every_message_is_translated_to_chinese():
    catalog = i18n_catalog.load("zh_CN")
    missing = sorted(
        m for m in i18n_catalog.all_messages() if not (catalog.get(m) and catalog.get(m).string)
    )
    assert missing == [], "run 'python -m anju.web.i18n_catalog' and translate: " + "; ".join(
        missing[:20]
    )


def test_catalogue_compiles_and_translates():
    zh = i18n.translations("zh_CN")
    assert zh.gettext("Dashboard") == "首页概览"
    assert zh.gettext("ID number check digit is wrong") == "身份证号码校验码错误"
    assert i18n.translations("en").gettext("Dashboard") == "Dashboard"
