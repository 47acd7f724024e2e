"""Language identification and quality rules applied by language."""

from __future__ import annotations

import numpy as np
import pytest

from crawlmix.quality import (
    HeuristicThresholds,
    all_rule_columns,
    heuristic_signals,
    identify_languages,
    rule_applies,
    rules_applied,
)
from crawlmix.quality_steps import score_shard

# Package descriptions translated by Debian's DDTP (bookworm main/i18n/Translation-<lang>).
DDTP = {
    "cs": 'Databázový server pro Evolution. Datový server, nazývaný "Evolution Data Server" je zodpovědný za '
          "správu pošty, kalendáře, adresáře, plánovače a poznámek.",
    "de": "Deutsches Sprachpaket für Firefox ESR. Firefox ESR ist ein leistungsstarker, erweiterbarer Webbrowser. "
          "Er unterstützt moderne Techniken für Webanwendungen. Dieses Paket enthält die deutsche Lokalisierung "
          "für Firefox ESR.",
    "es": "tipografías «TrueType» para lengua Dzongkha. Este paquete incluye tipografías adecuadas para mostrar la "
          "lengua Dzongkha (la lengua nacional de Bhutan).",
    "fi": "Kaaviomuokkain. Dialla voi muokata monia erityyppisiä kaavioita. Sovellus tukee UML:n staattisia "
          "rakennekaavioita (luokkakaavio), käsitekaavioita, verkkokaavioita ja monia muita.",
    "fr": "localisation en hindi (Inde) pour Firefox ESR. Firefox ESR est un navigateur web puissant, extensible, "
          "qui gère les technologies web modernes. Ce paquet fournit la localisation en hindi (Inde) pour Firefox ESR.",
    "it": "estensione Perl per la funzione strptime(3) POSIX per l'analisi di date. La funzione strptime() converte "
          "la stringa specificata di caratteri in valori temporali, usando il formato specificato.",
    "ja": "Debian システム管理ガイド - ポルトガル語版. 本 Debian リファレンスは Debian システムのインストール後のユーザガイドとし"
          "て、Debian に関する幅広い概論を提供することが目的です。",
    "ko": "GNU readline과 history 라이브러리, 런타임 라이브러리. GNU readline 라이브러리는 명령행 인터페이스를 제공할 필요가 "
          "있는 별개의 프로그램 사이에서 사용자 인터페이스의 일관성을 제공합니다.",
    "nl": "evolution database backend server. De data server, ‘Evolution Data Server’, is verantwoordelijk voor "
          "het beheren van mail, agenda, adresboek, taken en memo-informatie.",
    "pl": "Narzędzia i przykładowe programy do libdvbpsi. Libdvbpsi to prosta biblioteka do dekodowania i tworzenia "
          "tabel MPEG TS i DVB PSI. Ten pakiet zawiera dvbinfo oraz inne przykładowe programy.",
    "pt": 'servidor de suporte de banco de dados do evolution. O servidor de dados, chamado "Evolution Data Server" '
          "é responsável por gerenciar informações de correio, calendário, catálogo de endereços, tarefas e memorandos.",
    "ru": "инструменты синхронизации для работы с общей памятью в X. Библиотека предоставляет инструменты для "
          "синхронизации доступа к общей памяти между графическим сервером и клиентами.",
    "sv": "automatiskt byggverktyg för configure-skript (utfasad version). Den här utfasade versionen krävs för att "
          "bygga GCC, newlib och troligen en del andra relaterade paket med verktygskedjor.",
    "zh": "SOCKS (v4 和 v5) 代理守护程序 (danted). Dante 是一款会话层防火墙和代理。只需要运行 Dante 的服务器能访问外网，它就能提供"
          "便捷、安全的网络连接，访问多种类型的主机。",
}
ENGLISH = ("Choosing a backup strategy starts with a clear idea of what has to be restored and how quickly. "
           "Files that change every day need frequent copies, while archives that never change can be copied "
           "once and checked from time to time.")


def test_real_descriptions_in_fourteen_languages_are_identified():
    codes, scores = identify_languages(list(DDTP.values()) + [ENGLISH])
    assert codes == [*DDTP, "en"]
    assert scores.dtype == np.float32 and (scores > 0.5).all() and (scores <= 1).all()


def test_empty_text_is_undetermined_and_a_long_page_is_read_at_its_start_and_middle():
    codes, scores = identify_languages(["", None, "   \n  "])
    assert codes == ["und"] * 3 and (scores == 0).all()
    english_menu = "Home | Downloads | Documentation | Support | Contact us | Sign in\n"
    french_page = english_menu + "\n".join([DDTP["fr"]] * 12)  # newlines do not break the one-line model
    assert identify_languages([french_page])[0] == ["fr"]
    assert identify_languages([ENGLISH * 20 + DDTP["de"] * 2])[0] == ["en"]  # the end is never read


def test_english_only_and_whitespace_rules_apply_to_the_languages_they_were_made_for():
    every = all_rule_columns()
    assert rules_applied("en") == every and rules_applied(None) == every and rules_applied("und") == every
    german = rules_applied("de")
    assert set(every) - set(german) == {"pass_gopher_stop_words", "pass_gopher_mean_word_len"}
    japanese = set(every) - set(rules_applied("ja"))
    assert {"pass_gopher_word_count", "pass_c4_min_sentences", "pass_fineweb_line_punct"} <= japanese
    assert rule_applies("pass_c4_fatal_patterns", "ja") and not rule_applies("pass_gopher_stop_words", "fr")


def test_a_rule_passes_documents_in_languages_it_was_not_made_for():
    german = " ".join([DDTP["de"]] * 6)  # long enough for the word-count rule
    plain = heuristic_signals([german])
    assert not plain["pass_gopher_stop_words"].iloc[0]  # no English stop words in German
    judged = heuristic_signals([german], languages=["de"])
    assert judged["pass_gopher_stop_words"].iloc[0] and judged["stop_words"].iloc[0] == plain["stop_words"].iloc[0]
    japanese = heuristic_signals([DDTP["ja"]], languages=["ja"])
    assert japanese["pass_gopher_word_count"].iloc[0] and japanese["pass_c4_min_sentences"].iloc[0]
    with pytest.raises(ValueError, match="languages"):
        heuristic_signals([german], languages=["de", "en"])


def test_scores_carry_the_language_and_a_german_page_is_not_capped_as_non_english():
    german = "\n".join([DDTP["de"]] * 8)
    scores = score_shard([german, ENGLISH * 4], None, None, HeuristicThresholds())
    assert scores["language"].tolist() == ["de", "en"] and scores["language_score"].between(0.5, 1).all()
    assert scores["pass_gopher_stop_words"].all()
    assert scores["quality"].iloc[0] > 0.2  # the hard-fail cap would hold it at 0.2 if judged as English
