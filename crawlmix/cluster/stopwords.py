"""Stop words for cluster names, per language, and web boilerplate tokens.

Names are computed before any language is known for a document, so the default is the union of
every list here: a function word of one language is never a useful topic word in another.
Only words of three or more letters matter (shorter tokens are never name words).
"""

from __future__ import annotations

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        """
        a about above across after afterwards again against all almost alone along already also although
        always am among amongst an and another any anyhow anyone anything anyway anywhere are aren around
        as at back be became because become becomes becoming been before beforehand behind being below
        beside besides between beyond both but by can cannot could couldn did didn do does doesn doing
        don done down due during each either else elsewhere enough etc even ever every everyone
        everything everywhere except few for former formerly from further get gets got had hadn has hasn
        have haven having he hence her here hereafter hereby herein hers herself him himself his how
        however i ie if in indeed instead into is isn it its itself just last later latter least less
        let like ll made make many may me meanwhile might mine more moreover most mostly much must my
        myself namely neither never nevertheless next no nobody none noone nor not nothing now nowhere of
        off often on once one only onto or other others otherwise our ours ourselves out over own per
        perhaps please put quite rather re really said same say says see seem seemed seeming seems several
        shall she should shouldn since so some somehow someone something sometime sometimes somewhere
        still such than that the their theirs them themselves then thence there thereafter thereby
        therefore therein thereupon these they this those though through throughout thru thus to together
        too toward towards under until up upon us use used using ve very via was wasn we well were weren
        what whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
        whether which while whither who whoever whole whom whose why will with within without won would
        wouldn yet you your yours yourself yourselves
        """.split()
    ),
    "de": frozenset(
        """
        aber alle allem allen aller alles als also andere anderem anderen anderer anderes anders auch auf
        aus bei beim bin bis bist damit dann das dass dasselbe dazu dein deine dem den denn der des dessen
        deshalb die dies diese diesem diesen dieser dieses doch dort durch ein eine einem einen einer eines
        etwas euch euer eure für gegen gewesen habe haben hat hatte hier hinter ich ihm ihn ihnen ihr ihre
        ihrem ihren ihrer indem ins ist jede jedem jeden jeder jedes jetzt kann kein keine keinem keinen
        können könnte mein meine mich mir mit muss müssen nach nicht nichts noch nun nur oder ohne sehr
        sein seine seinem seinen sich sie sind soll sollen sondern sonst über und unter uns unser unsere viel
        vom von vor waren warum weil weiter welche welchem welchen welcher wenn werde werden wie wieder wir
        wird wurde wurden zum zur zwar zwischen
        """.split()
    ),
    "fr": frozenset(
        """
        aux avec ces cette dans des elle elles est été être eux ils les leur leurs lui mais même mes moi
        mon nos notre nous par pas pour que qui ses son sur toi ton une vos votre vous avoir fait faire
        plus peut sont était aussi comme tout tous toute toutes très sans sous entre donc car ainsi cela
        ici où quand dont celle celui ceux chez elle encore alors avant après depuis
        """.split()
    ),
    "es": frozenset(
        """
        algo algunos ante antes como con contra cual cuando del desde donde durante ella ellas ellos entre
        era eran esa esas ese eso esos esta estas este esto estos estaba fue fueron hay las los más
        mientras muy nada nos nosotros otra otras otro otros para pero poco por porque que quien sin sobre
        son sus también tanto todo todos una uno unos usted cómo qué está están ser sido tiene tienen
        puede hacer cada así
        """.split()
    ),
    "it": frozenset(
        """
        anche alla alle allo agli che chi come con cosa dal dalla dai dei del della delle dello degli dopo
        già gli hanno nel nella nelle nei non per più questo questa questi queste quello quella sono sua
        suo sue suoi una uno tra fra tutto tutti essere stato stata può fare molto ogni
        """.split()
    ),
    "pt": frozenset(
        """
        aos com como das dos ela elas ele eles entre era essa esse esta este isso isto já mais mas mesmo
        muito nas nem nos não para pela pelo por quando que sem ser seu sua são também tem uma umas uns
        você está foi pode fazer cada
        """.split()
    ),
    "nl": frozenset(
        """
        aan als bij dat deze die dit door een geen het hij hoe kan maar met naar niet nog ons ook over
        tot uit van veel voor wat wel werd wie wij zal zich zij zijn zou worden heeft hebben
        """.split()
    ),
}

# Markup and address fragments that survive text extraction on web pages.
WEB_NOISE = frozenset("http https www com org html htm php asp aspx amp nbsp quot".split())

# Site chrome: links and labels that every page of a site repeats ("Prev Up Home Next", "[Contents]
# [Index]"). Main-text extraction keeps some of it, and since each page has it, it would name the
# cluster of that site. These are demoted, not removed: "index" can be a topic (database indexes).
NAVIGATION_WORDS = frozenset(
    """
    prev previous next home contents index top chapter section page pages menu search skip navigation
    copyright rights reserved privacy cookie cookies login subscribe share click back footer header
    sidebar breadcrumb permalink toggle
    """.split()
)

ENGLISH_STOP_WORDS = STOP_WORDS["en"]
ALL_STOP_WORDS = frozenset().union(*STOP_WORDS.values(), WEB_NOISE)
