"""People who talk to the advisor, as the lines they would type in the console.

Option numbers follow dialogs/outsourcing.yaml. Each persona is a kind of person the doctrine
(shared/seed/strategic-outsourcing.txt) must answer differently.
"""

# A pre-launch founder building outsourcing into the plan from the start.
PRE_LAUNCH_PLANNER = [
    "1",          # stage: pre-launch
    "2",          # size: 2-10
    "1",          # industry: software
    "2",          # core: build the product
    "skip",       # pains
    "4,9",        # tasks: content marketing, IT
    "10",         # hours a week
    "4",          # owners: nobody yet
    "1",          # process: written down, with an owner
    "4",          # trigger: planning ahead
    "4",          # horizon: long term
    "1,3,4",      # goals: core time, valuation, stay ahead
    "1",          # past: never
    "3",          # relation: partner who shares our goals
    "3",          # concern: data security
    "1",          # contact: no thanks
]

# An established firm cutting costs through one-off vendors: traditional, reactive outsourcing.
ESTABLISHED_COST_CUTTER = [
    "4",          # stage: established
    "4",          # size: 51-250
    "6",          # industry: manufacturing
    "4",          # core: make or move goods
    "we pay freelancers for bookkeeping and IT support whenever something breaks",
    "",           # tasks: confirm what was understood (bookkeeping, IT)
    "25",         # hours
    "3",          # owners: vendors, job by job
    "1",          # process: written down, with an owner
    "2",          # trigger: cut costs
    "1",          # horizon: this quarter
    "6",          # goals: cut costs only
    "2",          # past: one-off vendors
    "1",          # relation: fixed-scope vendor
    "4",          # concern: hidden or rising costs
    "1",          # contact: no thanks
]

# A growing company outsourcing to make room for growth: tactical, halfway to strategic.
GROWING_TACTICAL = [
    "3",          # stage: growing
    "3",          # size: 11-50
    "2",          # industry: professional services
    "3",          # core: deliver services
    "our consultants do their own recruiting and data entry",
    "yes",        # tasks: confirm recruiting, data entry
    "15",         # hours
    "1",          # owners: the core team
    "2",          # process: partly
    "3",          # trigger: growth
    "2",          # horizon: 12 months
    "1,5",        # goals: core time, scale
    "1",          # past: never
    "2",          # relation: managed service
    "1,5",        # concern: quality, communication
    "Maria Lopez, maria@example.com",
]

# The seed's example: a sales team that also does telemarketing, appointment setting and content.
SALES_TEAM = [
    "3",          # stage: growing
    "3",          # size: 11-50
    "1",          # industry: software
    "1",          # core: sell, close deals
    "our sales team also does telemarketing, appointment setting and content marketing, so we close fewer deals",
    "",           # tasks: confirm
    "30",         # hours
    "1",          # owners: the core team
    "2",          # process: partly
    "1",          # trigger: a problem that keeps coming back
    "2",          # horizon: 12 months
    "1",          # goals: more time for core work
    "1",          # past: never
    "2",          # relation: managed service
    "1",          # concern: quality
    "1",          # contact: no thanks
]

# Two founders who say their admin takes 200 hours a week: read back, and they say it is right.
OVERLOADED_FOUNDERS = [
    "2",          # stage: early
    "2",          # size: 2-10
    "2",          # industry: professional services
    "3",          # core: deliver services
    "skip",       # pains
    "8,9,10",     # tasks: bookkeeping, IT, recruiting
    "200",        # hours a week: more than a company of 2-10 usually has...
    "yes",        # ...read back, and confirmed
    "1",          # owners: the core team
    "3",          # process: nobody owns them, nothing written down
    "1",          # trigger: a problem that keeps coming back
    "1",          # horizon: this quarter
    "1",          # goals: more time for core work
    "1",          # past: never
    "1",          # relation: fixed-scope vendor
    "4",          # concern: hidden or rising costs
    "1",          # contact: no thanks
]

# A product company that loses no time to non-core work: the advice is "not now".
NEEDS_NOTHING = [
    "4",          # stage: established
    "3",          # size: 11-50
    "1",          # industry: software
    "2",          # core: build the product
    "skip",       # pains
    "12",         # tasks: none of these
    "4",          # trigger: planning ahead
    "2",          # horizon: the next 12 months
    "1",          # goals: more time for core work
    "1",          # past: never
    "2",          # relation: managed service
    "6",          # concern: nothing in particular
    "1",          # contact: no thanks
]

PERSONAS = {
    "pre_launch_planner": PRE_LAUNCH_PLANNER,
    "established_cost_cutter": ESTABLISHED_COST_CUTTER,
    "growing_tactical": GROWING_TACTICAL,
    "sales_team": SALES_TEAM,
}

# Two more, for the tests that check every kind of advice (a read-back; a "not now"). Kept apart so
# the tests that populate a database with the four above keep their ids.
ALL_PERSONAS = {
    **PERSONAS,
    "overloaded_founders": OVERLOADED_FOUNDERS,
    "needs_nothing": NEEDS_NOTHING,
}

# What the personas type in their own words, as a German or a Spanish speaker says it: the same tasks.
SAID_IN = {
    "de": {
        "we pay freelancers for bookkeeping and IT support whenever something breaks":
            "wir bezahlen Freelancer für die Buchhaltung und den IT-Support, wenn etwas kaputtgeht",
        "our consultants do their own recruiting and data entry":
            "unsere Berater machen das Recruiting und die Datenerfassung selbst",
        "our sales team also does telemarketing, appointment setting and content marketing, so we close fewer deals":
            "unser Vertrieb macht auch Kaltakquise, Terminvereinbarung und Content-Marketing, deshalb schließen wir "
            "weniger ab",
    },
    "es": {
        "we pay freelancers for bookkeeping and IT support whenever something breaks":
            "pagamos a freelancers por la contabilidad y el soporte informático cada vez que algo se rompe",
        "our consultants do their own recruiting and data entry":
            "nuestros consultores hacen su propio reclutamiento y la carga de datos",
        "our sales team also does telemarketing, appointment setting and content marketing, so we close fewer deals":
            "nuestro equipo de ventas también hace llamadas en frío, agenda citas y hace marketing de contenidos, "
            "así que cerramos menos ventas",
    },
}


def persona_in(lines: list[str], language: str) -> list[str]:
    """A persona's lines with what they type in their own words said in ``language``."""
    said = SAID_IN.get(language, {})
    return [said.get(line, line) for line in lines]
