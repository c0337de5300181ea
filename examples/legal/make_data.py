"""Generate ``clauses.csv``: short contract clauses labelled by clause type.

Every clause is written from templates in this file (self-written for this project, not
copied from any real contract), with varied slots: parties, durations, jurisdictions,
amounts, and ``[a|b|c]`` alternative wordings. Each clause type has several *families*
(one template each, a differently built sentence); ``train.py`` holds out whole families,
so its held-out score measures new sentence shapes, not new slot values in a seen one.

The seed is fixed, so ``python -m examples.legal.make_data`` rewrites the committed CSV
byte for byte.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

SEED = 20240611
ROWS_PER_FAMILY = 5
CSV_PATH = Path(__file__).with_name("clauses.csv")

PARTIES = (
    "the Supplier",
    "the Customer",
    "the Company",
    "the Contractor",
    "the Client",
    "the Licensor",
    "the Licensee",
    "the Service Provider",
    "the Buyer",
    "the Seller",
    "the Consultant",
    "the Vendor",
    "the Distributor",
)
AGREEMENTS = (
    "this Agreement",
    "this Contract",
    "this Master Services Agreement",
    "this License Agreement",
    "this Supply Agreement",
    "the Services Agreement",
    "this Consulting Agreement",
    "the Distribution Agreement",
)
SUBJECTS = (
    "the Services",
    "the Software",
    "the Products",
    "the Deliverables",
    "the Goods",
    "the Licensed Materials",
    "the Platform",
    "the Equipment",
)
NOTICE = (
    "ten (10) business days",
    "fifteen (15) days",
    "thirty (30) days",
    "forty-five (45) days",
    "sixty (60) days",
    "ninety (90) days",
    "fourteen (14) days",
    "three (3) months",
)
YEARS = (
    "six (6) months",
    "one (1) year",
    "twelve (12) months",
    "eighteen (18) months",
    "two (2) years",
    "three (3) years",
    "five (5) years",
    "twenty-four (24) months",
)
WARRANTY_PERIODS = (
    "thirty (30) days",
    "ninety (90) days",
    "six (6) months",
    "twelve (12) months",
    "one (1) year",
    "twenty-four (24) months",
)
# (governing law, a city for its courts or an arbitration seat)
PLACES = (
    ("the State of New York", "New York, New York"),
    ("the State of Delaware", "Wilmington, Delaware"),
    ("England and Wales", "London"),
    ("the State of California", "San Francisco, California"),
    ("the Province of Ontario", "Toronto"),
    ("the Republic of Singapore", "Singapore"),
    ("Ireland", "Dublin"),
    ("the Commonwealth of Massachusetts", "Boston, Massachusetts"),
    ("the State of Texas", "Austin, Texas"),
    ("New South Wales", "Sydney"),
    ("Scotland", "Edinburgh"),
    ("Switzerland", "Zurich"),
    ("Germany", "Frankfurt am Main"),
    ("the Netherlands", "Amsterdam"),
    ("Hong Kong", "Hong Kong"),
)
AMOUNTS = (
    "$50,000",
    "USD 250,000",
    "£100,000",
    "EUR 75,000",
    "$1,000,000",
    "USD 2,500",
    "€12,000",
    "$18,500",
    "£4,750",
    "CAD 30,000",
)
REGIONS = (
    "the United States",
    "the European Union",
    "a radius of fifty (50) miles of any office of {other}",
    "any country in which {other} does business",
    "the United Kingdom",
    "North America",
    "the Territory",
    "the State of {state}",
)
STATES = ("Oregon", "Florida", "Illinois", "Georgia", "Colorado", "Ohio")
FIELDS = (
    "payroll software",
    "freight logistics",
    "medical device",
    "cloud hosting",
    "specialty coffee",
    "industrial cleaning",
    "online education",
    "pet insurance",
)
# Openers any clause may start with: they carry no clause type.
PREFIXES = (
    "Notwithstanding anything to the contrary in {agreement}, ",
    "Except as otherwise provided herein, ",
    "Subject to the other terms of {agreement}, ",
    "To the extent permitted by applicable law, ",
    "For the avoidance of doubt, ",
    "Unless the parties agree otherwise in writing, ",
)
# Real contracts often add survival language to clauses of other types.
SURVIVAL = (
    " This Section shall survive [the termination or expiration|any termination] of {agreement}."
)
SURVIVING_TYPES = {
    "confidentiality",
    "indemnification",
    "limitation_of_liability",
    "intellectual_property",
    "non_compete",
    "dispute_resolution",
    "governing_law",
}

# label -> the families' templates. {party}/{other} are two different parties
# ({party_cap}/{other_cap}: capitalised), [a|b] picks one wording.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "confidentiality": (
        "{party_cap} shall [keep|hold|maintain] [in strict confidence|in confidence|strictly "
        "confidential] all Confidential Information [disclosed|furnished|made available] by "
        "{other} and shall not [disclose|reveal|divulge] it to any third party [without the "
        "prior written consent of {other}|except as permitted by {agreement}].",
        "Each party [agrees to|shall] use the other party's Confidential Information [solely "
        "for the purpose of performing its obligations under {agreement}|only to perform its "
        "obligations under {agreement}|only as necessary to exercise its rights under "
        "{agreement}] and for no other purpose.",
        '"Confidential Information" means all [non-public|proprietary|confidential] '
        "[business, technical and financial|technical or commercial|financial and operational] "
        "information [disclosed by|received from] {party}[, whether orally or in writing| in "
        "any form or medium|, whether or not marked as confidential].",
        "The obligations of confidentiality shall not apply to information that [is or becomes "
        "publicly available|was already known to the receiving party|is independently developed "
        "by the receiving party|is lawfully received from a third party] [through no fault of "
        "the receiving party|without use of the disclosing party's information|as shown by its "
        "written records].",
        "Upon [the disclosing party's written request|expiry of {agreement}|termination of "
        "{agreement}], the receiving party shall promptly [return or destroy|destroy|return] "
        "all [documents and materials|copies|records] containing Confidential Information "
        "[and certify such destruction in writing|and confirm this in writing within {notice}].",
        "If the receiving party is [required by law|compelled by court order|required by a "
        "regulator] to disclose any Confidential Information, it shall [give|provide] {other} "
        "[prompt written notice|reasonable advance notice] so that {other} may seek a "
        "protective order[ or other appropriate remedy|].",
        "The confidentiality obligations in this Section shall [remain in effect|continue|"
        "survive] for {years} [after|following] [the disclosure of the relevant information|"
        "the termination or expiration of {agreement}|the Effective Date].",
        "{party_cap} may disclose Confidential Information only to its [employees, officers and "
        "advisers|employees and contractors|personnel and professional advisers] who need to "
        "know it [and who are bound by|and who have agreed to] [written confidentiality "
        "obligations|obligations of confidentiality] no less [protective|restrictive] than "
        "those [set out|contained] in this Section.",
        "{party_cap} shall protect the [secret|proprietary] information of {other} [using the"
        " same degree of care that it uses to protect its own confidential information, and "
        "in any event no less than reasonable care|with no less than a reasonable degree of "
        "care].",
        "[Neither party shall|No party may] [make any public announcement|issue any press "
        "release] concerning [the existence or terms of {agreement}|the transactions "
        "contemplated by {agreement}] without the prior written approval of the other party.",
        "The terms and pricing of {agreement} are [confidential|strictly confidential] and "
        "shall not be [revealed to|disclosed to] [any third party|anyone outside the parties "
        "and their professional advisers].",
        "{party_cap} acknowledges that [unauthorised disclosure|any misuse or disclosure] of "
        "[trade secrets|non-public information] [received from|belonging to] {other} [may "
        "cause irreparable harm|would cause irreparable damage] for which [damages would not "
        "be an adequate remedy|{other} shall be entitled to seek injunctive relief].",
        "[Personal data|Customer data] [received|processed] by {party} [under|in connection "
        "with] {agreement} shall be kept [secure and confidential|private and secure] and "
        "[used only|processed only] [on the documented instructions of {other}|for providing "
        "{subject}].",
    ),
    "termination": (
        "Either party may terminate {agreement} [for convenience|at any time|without cause] by "
        "giving [not less than|at least] {notice} [prior written notice|written notice] to the "
        "other party.",
        "Either party may terminate {agreement} [immediately|with immediate effect|upon written "
        "notice] if the other party [commits a material breach|materially breaches any "
        "provision] of {agreement} and [fails to cure|does not remedy] such breach within "
        "{notice} after [receiving|receipt of] written notice[ of the breach| describing it].",
        "{party_cap} may terminate {agreement} [immediately|forthwith] upon written notice if "
        "{other} [becomes insolvent|makes an assignment for the benefit of creditors|has a "
        "receiver or administrator appointed|enters into liquidation][ or ceases to carry on "
        "business| or files a petition in bankruptcy|].",
        "Upon [termination or expiration|any termination] of {agreement}, [all licenses granted "
        "hereunder shall immediately terminate|{party} shall immediately cease using {subject}] "
        "and {other} shall pay all fees [accrued|due] up to the [effective date of "
        "termination|termination date].",
        "{agreement_cap} [shall commence on the Effective Date and|will begin on the Effective "
        "Date and] [continue|remain in force] for an initial term of {years}, [and will "
        "automatically renew for successive one-year terms|after which it shall renew "
        "automatically for further periods of twelve (12) months] unless either party gives "
        "notice of non-renewal at least {notice} before the end of the [then-current|current] "
        "term.",
        "{party_cap} [may|shall be entitled to] terminate {agreement} on {notice} written notice "
        "[if {other} undergoes a change of control|following a change of control of {other}].",
        "If {party} fails to pay any undisputed amount within {notice} of its due date, {other} "
        "may [suspend performance and terminate|terminate] {agreement} [by written notice|upon "
        "notice].",
        "[Termination|Expiration or termination] of {agreement} shall not [affect|prejudice] any "
        "rights, remedies or obligations of the parties that have accrued [as at|up to] the date "
        "of termination[, and the provisions which by their nature should survive shall "
        "survive|].",
        "{other_cap} may [cancel|terminate] any [Order|Statement of Work|purchase order] [in "
        "whole or in part|] [for convenience|at any time] upon {notice} [notice|written "
        "notice] to {party}[, paying only for work performed up to the date of "
        "cancellation|].",
        "[On|Following] expiry or termination, {party} shall [return all property of "
        "{other}|deliver to {other} all data in its possession] [within {notice}|promptly] "
        "and [provide reasonable transition assistance|cooperate in the orderly transfer of "
        "{subject}][ to a replacement supplier|].",
        "{agreement_cap} [will|shall] [automatically terminate|end automatically] [if|where] "
        "[{party} ceases to hold any licence required to perform it|the Order Form expires "
        "and is not renewed|the parties fail to agree the Specifications within {notice}].",
        "[A party|Either party] may [end|bring to an end] {agreement} by notice[ in writing|]"
        " if the other party [repeatedly fails|persistently fails] to [meet the agreed "
        "service levels|perform its obligations] [in any three (3) consecutive months|and "
        "does not improve within {notice}].",
        "{party_cap} [has the right to|may] [terminate|cancel] {agreement} [with immediate "
        "effect|immediately] [if {other} breaches its confidentiality obligations|if {other} "
        "commits fraud or any act of dishonesty|if {other} violates any applicable "
        "anti-bribery law].",
    ),
    "governing_law": (
        "{agreement_cap} [shall be|is] governed by and construed in accordance with the laws of "
        "{jurisdiction}[, without regard to its conflict of laws principles|, excluding its "
        "conflict of law rules|].",
        "The parties [irrevocably submit|agree to submit] to the exclusive jurisdiction of the "
        "courts [of|located in] {city} [for any dispute arising out of|in respect of any matter "
        "arising under] {agreement}.",
        "The United Nations Convention on Contracts for the International Sale of Goods shall "
        "not apply to {agreement}[, the application of which is expressly excluded|, nor to any "
        "order placed under it|].",
        "All [questions|matters] concerning the [validity, interpretation and performance|"
        "construction, validity and enforcement] of {agreement} shall be [determined|decided] "
        "under the [laws|substantive law] of {jurisdiction}.",
        "Each party waives any objection to [venue|the venue of any action] in the [state and "
        "federal courts|courts] [located in|sitting in] {city} [and any claim that such courts "
        "are an inconvenient forum|on the grounds of forum non conveniens].",
        "This [Section|clause] and any non-contractual obligations arising out of or in "
        "connection with {agreement} shall be governed by the law of {jurisdiction}.",
        "[Regardless of|Irrespective of] where {party} is located, the law of {jurisdiction} "
        "[applies|shall apply] to {agreement} and to any [claim|dispute] [relating to|"
        "concerning] {subject}.",
        "Nothing in this Section [prevents|shall prevent] {party} from [seeking|applying for] "
        "injunctive relief in [any court of competent jurisdiction|the courts of any country], "
        "[but|and] {agreement} [remains|shall remain] subject to the laws of {jurisdiction}.",
        "[The law applicable to|The proper law of] {agreement} [is|shall be] the law of "
        "{jurisdiction}.",
        "{agreement_cap} [is to be interpreted|shall be interpreted and enforced] "
        "[under|according to] the [laws in force in|law of] {jurisdiction}[, regardless of "
        "the place of performance|, and the courts of {city} shall have jurisdiction|].",
        "[If any conflict arises|In case of conflict] between the laws of {jurisdiction} and "
        "any [other applicable law|foreign law], the laws of {jurisdiction} shall "
        "[prevail|govern].",
        "The parties agree that {agreement} was [made|executed] in {city} and [shall be "
        "construed as a contract made under|is subject to] the [laws|statutes and common law]"
        " of {jurisdiction}.",
        "[Any proceedings|Any suit, action or proceeding] arising out of {agreement} shall be"
        " brought [only|exclusively] in the courts of {city}, and each party [consents "
        "to|submits to] the personal jurisdiction of those courts.",
    ),
    "indemnification": (
        "{party_cap} shall [indemnify, defend and hold harmless|defend, indemnify and hold "
        "harmless|indemnify and hold harmless] {other} and its [officers, directors and "
        "employees|affiliates, officers and agents|employees and agents] from and against "
        "[any and all|all] [claims, losses, damages, liabilities, costs and expenses|losses, "
        "liabilities and expenses] [arising out of|resulting from] [any breach of {agreement} "
        "by {party}|the negligent performance of {agreement} by {party}].",
        "{party_cap} will defend {other} against any third-party claim alleging that the use of "
        "{subject} infringes [any patent, copyright or trademark|a third party's intellectual "
        "property rights] and will pay any damages [finally awarded|awarded by a court][ or "
        "agreed in settlement|].",
        "The indemnified party shall [promptly notify|give prompt written notice to] the "
        "indemnifying party of any claim [for which indemnity is sought|subject to "
        "indemnification], [allow|permit] the indemnifying party to control the defence[ and "
        "settlement|] of the claim, and [provide|give] reasonable [cooperation|assistance] at "
        "the indemnifying party's expense.",
        "The indemnifying party shall not settle any claim [in a manner that|that] [imposes any "
        "liability on|requires any admission by] the indemnified party without its prior "
        "written consent[, which shall not be unreasonably withheld|].",
        "{party_cap} shall indemnify {other} against all [losses|costs and liabilities] "
        "[incurred|suffered] as a result of any claim that [the data|the materials|the "
        "content] supplied by {party} [violates applicable law|infringes the rights of any "
        "third party].",
        "[The obligations|The indemnities] in this Section [shall not apply|do not apply] to "
        "the extent that [a claim|any loss] [arises from|is caused by] the [gross negligence or "
        "wilful misconduct|negligence] of the indemnified party.",
        "{party_cap} [agrees to|shall] indemnify {other} for any [personal injury, death or "
        "property damage|bodily injury or damage to tangible property] caused by the acts or "
        "omissions of its [personnel|employees, agents or subcontractors] [while on the "
        "premises of {other}|in the course of performing {agreement}].",
        "[Each party|{party_cap}] shall reimburse [the other party|{other}] for reasonable "
        "attorneys' fees and [legal costs|court costs] [incurred in defending|arising from] any "
        "third-party [claim|action] covered by this indemnity.",
        "{party_cap} [undertakes to|shall] [compensate|make good] {other} [in full|on demand]"
        " for any [loss, liability or cost|claims and liabilities] [that {other} "
        "incurs|suffered by {other}] as a result of [a breach of the warranties given by "
        "{party}|any act or omission of {party}].",
        "[If|Where] a claim is made against {other} [by a third party|by any person] [in "
        "relation to|arising from] [the acts of {party}|{subject} supplied by {party}], "
        "{party} [shall hold {other} harmless from|shall keep {other} fully indemnified "
        "against] [that claim|all resulting losses].",
        "[In the event of|If there is] an infringement claim, {party} may, at its "
        "[option|discretion] and expense, [procure the right for {other} to continue using "
        "{subject}|modify {subject} so that it is non-infringing|replace {subject} with a "
        "non-infringing equivalent].",
        "{party_cap} shall [indemnify|compensate] {other} for all [fines, penalties and "
        "costs|regulatory fines and related costs] [imposed on|incurred by] {other} [as a "
        "result of|due to] [a breach of data protection law by {party}|the failure of {party}"
        " to comply with applicable law].",
        "[This indemnity|The indemnity in this clause] [extends to|covers] [reasonable legal "
        "fees|all reasonable professional fees] and [shall not be subject to the limitations "
        "on liability|is in addition to any other remedy available to {other}].",
    ),
    "limitation_of_liability": (
        "In no event shall either party be liable[ to the other party|] for any [indirect, "
        "incidental, special or consequential damages|indirect or consequential loss], "
        "including [loss of profits, revenue or data|lost profits or loss of goodwill], [even "
        "if advised of the possibility of such damages|however arising].",
        "[Each party's|The] [total|aggregate|maximum] liability [arising out of or relating to|"
        "under] {agreement} shall not exceed {amount}.",
        "The [total|aggregate] liability of {party} [for all claims|in any contract year] shall "
        "be limited to [the total fees paid by {other} in the twelve (12) months preceding the "
        "event giving rise to the claim|an amount equal to the fees paid under {agreement}|"
        "{amount}].",
        "Nothing in {agreement} [limits or excludes|shall limit or exclude] [either party's|"
        "any] liability for [death or personal injury caused by negligence|fraud or fraudulent "
        "misrepresentation|any liability that cannot be limited by law].",
        "The limitations in this Section shall not apply to [breaches of confidentiality|a "
        "party's indemnification obligations|infringement of the other party's intellectual "
        "property rights][ or to gross negligence or wilful misconduct|].",
        "{party_cap} shall have no liability for any loss [arising from|caused by] [the failure "
        "of {other} to follow instructions|any modification of {subject} not made by {party}|"
        "the use of {subject} in combination with third-party products].",
        "[Except as expressly stated|Save as expressly provided] in {agreement}, the liability "
        "of {party} [is limited to|shall be limited to] [the re-performance of the Services|"
        "repair or replacement of {subject}|a refund of the price paid] [and {other} shall have "
        "no other remedy|as the sole remedy of {other}].",
        "Any claim [against {party}|under {agreement}] must be brought within {years} after the "
        "cause of action arises[, after which it shall be time-barred|, failing which {party} "
        "shall have no liability for it].",
        "{party_cap} [will not|shall not] be responsible for [any loss of business, contracts"
        " or anticipated savings|any loss of data or corruption of data|any wasted "
        "expenditure] [howsoever caused|whether in contract, tort or otherwise].",
        "[Neither party excludes or limits|Neither party limits] its liability [to the "
        "extent|where] such [exclusion|limitation] would be [unlawful|prohibited by law].",
        "The [allocation of risk|limitations and exclusions] in this Section [reflect|are "
        "reflected in] the [fees|price] agreed and [are reasonable|form an essential basis of"
        " the bargain].",
        "[Under no circumstances|In no circumstances] will {party} be [liable|responsible][ "
        "to {other}|] for [punitive or exemplary damages|any special damages] [arising "
        "under|in connection with] {agreement}.",
        "[The maximum amount|The most] {other} [may recover|can recover] from {party} [for "
        "any single claim|in aggregate] [is|shall be] {amount}[, whether the claim arises in "
        "contract, negligence or otherwise|].",
    ),
    "payment": (
        "{other_cap} shall pay all [undisputed invoices|invoices] within {notice} [of the "
        "invoice date|after receipt|from the date of invoice].",
        "[Late payments|Any amount not paid when due] shall [bear|accrue] interest at [the rate "
        "of 1.5% per month|the lesser of 1% per month and the maximum rate permitted by law|"
        "four percent (4%) per annum above the base rate] from the due date until [payment in "
        "full|the date of actual payment].",
        "In consideration for {subject}, {other} shall pay {party} [a monthly fee of|an annual "
        "fee of|a one-time fee of] {amount}[ in advance| quarterly in advance| as set out in "
        "the Order Form].",
        "All [fees|amounts payable under {agreement}] are [exclusive of|stated exclusive of] "
        "[VAT, sales tax and other applicable taxes|all taxes, duties and levies], which shall "
        "be [paid by|borne by] {other}[ in addition| at the applicable rate].",
        "{other_cap} shall reimburse {party} for [reasonable, pre-approved|documented "
        "out-of-pocket] [travel and accommodation expenses|expenses] incurred in performing "
        "{agreement}[, provided that receipts are submitted|, payable within {notice} of "
        "invoice].",
        "If {other} disputes any invoice in good faith, it shall [notify|inform] {party}[ in "
        "writing|] within {notice}[ of receipt|] [and pay the undisputed portion by the due "
        "date|specifying the reasons for the dispute].",
        "{party_cap} may [increase|adjust] the fees [once per year|annually|on each anniversary "
        "of the Effective Date] by [no more than|up to] [five percent (5%)|three percent (3%)|"
        "the change in the consumer price index] on {notice} written notice.",
        "All payments shall be made in [US dollars|euros|pounds sterling] by [wire transfer|bank "
        "transfer|electronic funds transfer] to the account designated by {party}[, without "
        "set-off or deduction|, free of any bank charges|].",
        "{party_cap} [shall|will] [invoice|bill] {other} [monthly in arrears|quarterly in "
        "advance|upon delivery of {subject}|on completion of each milestone] [for the fees "
        "then due|in accordance with the Order Form].",
        "[A deposit|An advance payment] of [twenty percent (20%)|thirty percent (30%)|fifty "
        "percent (50%)] of the [total price|contract price] [is payable|shall be paid] [on "
        "signature of {agreement}|upon acceptance of the order], [and the balance on "
        "delivery|with the remainder due within {notice} of completion].",
        "[All sums|Payments] due under {agreement} shall be [paid in full|made] without any "
        "[withholding, set-off or counterclaim|deduction], [except as required by law|unless "
        "a deduction is required by law, in which case the amount shall be grossed up].",
        "[If any invoice remains unpaid|If {other} is late in paying] [for more than "
        "{notice}|after its due date], {party} may [charge a late fee of {amount}|recover its"
        " reasonable costs of collection].",
        "The [price|fees] for {subject} [are|shall be] [fixed for the first year|as stated in"
        " Schedule 1] and [include|cover] [all costs of delivery and packaging|all licence "
        "fees and support charges].",
    ),
    "intellectual_property": (
        "{party_cap} [retains|shall retain] all right, title and interest in and to [its "
        "pre-existing intellectual property|{subject}|its Background IP], [including all|"
        "together with all] [modifications, enhancements and derivative works|improvements] "
        "thereto.",
        "All [deliverables, work product and inventions|Deliverables|work product] created by "
        "{party} [under|in the course of performing] {agreement} shall be [the sole and "
        "exclusive property of|owned exclusively by] {other}, and {party} hereby assigns to "
        "{other} all [intellectual property rights|rights, title and interest] therein.",
        "Subject to the terms of {agreement}, {party} grants {other} a [non-exclusive, "
        "non-transferable|limited, revocable, non-sublicensable|worldwide, royalty-free, "
        "non-exclusive] [licence|license] to use {subject} [solely for its internal business "
        "purposes|during the term|for the purposes of {agreement}].",
        "{other_cap} shall not [reverse engineer, decompile or disassemble|copy, modify or "
        "create derivative works of] {subject}[ or permit any third party to do so| except to "
        "the extent permitted by law].",
        "{party_cap} may [use|freely use and incorporate] any [feedback or suggestions|"
        "suggestions, ideas or feedback] provided by {other} [regarding|about] {subject} without "
        "[restriction or payment|any obligation to {other}].",
        "{party_cap} [shall|agrees to] [execute all documents|do all acts and sign all "
        "documents] reasonably [required|requested] to [perfect|register] the [ownership|title] "
        "of {other} in the [patents, copyrights and other intellectual property rights|"
        "intellectual property] in the Deliverables[ and waives all moral rights in them|].",
        "Neither party shall use the [trademarks, logos or trade names|names or marks] of the "
        "other party [without its prior written consent|in any publicity or advertising without "
        "approval][, and all goodwill arising from such use shall accrue to the owner|].",
        "[Nothing in|No provision of] {agreement} [transfers|shall be construed as transferring] "
        "ownership of any [patent, copyright, trade secret or other intellectual property|"
        "intellectual property rights][ from one party to the other|], and all rights not "
        "expressly granted are reserved by {party}.",
        "All [source code, object code and documentation|reports, designs and specifications]"
        " [developed|produced] [specifically for {other}|under {agreement}] [shall vest "
        "in|will belong to] {other} [upon creation|on payment of the fees].",
        "[Each party|{party_cap}] [shall remain|remains] the owner of [its own data|the data "
        "it uploads to {subject}] and [grants|hereby grants] [the other party|{other}] [only "
        "the rights needed|a limited right] to [host and process it|use it to provide "
        "{subject}].",
        "{other_cap} [may not|shall not] [remove|alter or obscure] any [copyright, trademark "
        "or proprietary notices|proprietary markings] [on|contained in] {subject}.",
        "[Inventions|Improvements] [conceived|made] [jointly|together] by the parties [shall "
        "be jointly owned|will be owned jointly][ and each party may exploit them freely| "
        "without a duty to account to the other|].",
        "[The source code of|The source code for] {subject} [shall be deposited|will be "
        "placed] in escrow with [an independent escrow agent|a recognised escrow provider] "
        "and [released|made available] to {other} [if {party} ceases to support it|on the "
        "insolvency of {party}].",
    ),
    "force_majeure": (
        "Neither party shall be liable for any [delay or failure to perform|failure or delay in "
        "performance] [caused by|resulting from] events beyond its reasonable control, including "
        "[fire, flood and earthquake|acts of God, war and terrorism|epidemics, pandemics and "
        "riots|strikes, embargoes and government action].",
        "[If a Force Majeure Event occurs|Where a force majeure event prevents performance], the "
        "affected party shall [notify|promptly inform] the other party[ in writing|] [within "
        "{notice}|as soon as reasonably practicable] [and use reasonable efforts to mitigate its "
        "effects|describing the event and its expected duration].",
        "If a force majeure event [continues|persists] for more than {notice}, either party may "
        "terminate {agreement} by written notice[ to the other| without liability|].",
        "The performance of the affected party shall be [suspended|excused] for [as long as|the "
        "duration of] the [event beyond its control|force majeure event][, and the time for "
        "performance shall be extended accordingly|].",
        "[A Force Majeure Event|An event of force majeure] [does not|shall not] [include|excuse] "
        "[a lack of funds of {party}|any obligation of {party} to pay money when due|a failure "
        "by {party} to pay amounts owed].",
        "{party_cap} shall not be in breach of {agreement} [to the extent that|if] its "
        "performance is [prevented|hindered or delayed] by [a natural disaster|a pandemic|an "
        "outage of public utilities|a cyber attack not attributable to its negligence|labour "
        "disputes involving third parties].",
        "During any [period of |]force majeure, {party} [shall|will] [allocate available "
        "supplies fairly among its customers|use commercially reasonable efforts to resume "
        "performance] [as soon as possible|without delay].",
        "[Acts of God|Natural catastrophes], [hostilities|war], [government sanctions|changes "
        "in law], [epidemics|quarantine restrictions] and [interruptions of transport|shortages "
        "of energy] shall [constitute|be deemed] [events of force majeure|circumstances beyond "
        "the reasonable control of the parties].",
        "{party_cap} [is excused from|shall be relieved of] [performing|its obligations] [for"
        " so long as|while] [such performance is prevented|it is prevented from performing] "
        "by [flood, storm or other severe weather|civil unrest, sabotage or an act of "
        "terrorism|a strike or lockout|an order of a governmental authority].",
        "[Neither party|No party] [will be|shall be] [deemed in default|treated as being in "
        "default] [where|if] [a delay|its non-performance] is [attributable to|caused by] "
        "[circumstances|causes] [outside its control|beyond its reasonable control].",
        "[Where|If] {party} [is unable to deliver|cannot supply] {subject} [because of|owing "
        "to] [a shortage of raw materials|disruption in its supply chain|an export ban] [that"
        " it could not reasonably have foreseen|outside its control], [the delivery dates "
        "shall be postponed|{other} may source them elsewhere] [for the period of the "
        "disruption|without liability].",
        "[The party claiming relief|A party invoking this Section] [must|shall] "
        "[demonstrate|show] that the [event|circumstance] [could not have been prevented|was "
        "unforeseeable and unavoidable] [by reasonable precautions|by the exercise of due "
        "diligence].",
        "[Any|An] [act of God|extraordinary event], including [a pandemic|an epidemic], [a "
        "lockdown|a public health emergency] or [a failure of the electricity grid|a general "
        "internet outage], [that makes performance impossible|preventing performance] [shall "
        "suspend|suspends] the [affected obligations|obligations affected] [until it ends|for"
        " its duration].",
    ),
    "non_compete": (
        "During the term of {agreement} and for {years} thereafter, {party} shall not, "
        "[directly or indirectly|whether directly or indirectly], [engage in|carry on] any "
        "business that competes with {other} [within {region}|in the {field} market].",
        "For {years} after [the termination of|the end of] {agreement}, {party} shall not "
        "[solicit or hire|recruit, employ or engage] any employee of {other} [who was involved "
        "in the Services|with whom it had contact].",
        "{party_cap} [agrees not to|shall not] [solicit|canvass or entice away] any customer or "
        "client of {other} [for the purpose of offering competing products|in order to divert "
        "business] [during the Restricted Period|for {years}].",
        "{party_cap} shall not [acquire or hold|own, manage or operate] any interest in a "
        "[competitor|competing business] of {other}[, other than a passive holding of less than "
        "five percent (5%) of a listed company|].",
        "[During the term|While {agreement} is in force], {party} shall [not supply|refrain "
        "from supplying] [similar|competing] [products|services] to any [competitor of|business "
        "that competes with] {other}[ in {region}|].",
        "{party_cap} acknowledges that the [restrictions|restrictive covenants] in this Section "
        "are reasonable in [scope, duration and territory|duration and geographic area] and "
        "necessary to protect the [legitimate business interests|goodwill and trade secrets] of "
        "{other}.",
        "If any restriction in this Section is held [unenforceable|to be too broad], it shall "
        "[apply with such modifications|be reduced to the extent] necessary to make it "
        "[enforceable|valid], and the remaining [restrictions|covenants not to compete] shall "
        "[continue in effect|remain in force].",
        "For a period of {years} [following|after] the Closing, {party} shall not [establish|"
        "start] or [invest in|participate in] any [business|venture] [competing with|similar "
        "to] the Business[ within {region}| in the {field} sector|].",
        "{party_cap} [undertakes|covenants] that it [will not|shall not] [compete|enter into "
        "competition] with {other} [in the {field} industry|in {region}] [for {years} after "
        "the Effective Date|during the Restricted Period].",
        "[During the Restricted Period|For {years} following termination], {party} shall not "
        "[work for|provide services to] any [rival|competitor] of {other} [in a role similar "
        "to the one it performed|that operates in the {field} market].",
        "'Restricted Period' means [the term of {agreement} and {years} after its "
        "termination|the period of {years} beginning on the Closing Date]; 'Restricted "
        "Business' means [any business in the {field} sector|any business that competes with "
        "{other}].",
        "{party_cap} shall not [induce|encourage] any [supplier|distributor or agent] of "
        "{other} to [cease doing business with|reduce its business with] {other}[ for "
        "{years}|].",
        "[{party_cap} agrees that it will not|{party_cap} shall not], [alone or jointly with "
        "others|either alone or with any other person], [set up|operate] a [competing|rival] "
        "[business|enterprise][ within {region}|] [for {years}|while {agreement} remains in "
        "effect].",
    ),
    "warranty": (
        "{party_cap} warrants that {subject} will [perform substantially in accordance with|"
        "materially conform to] the [Documentation|Specifications] for a period of "
        "{warranty_period} [from delivery|after acceptance].",
        "{party_cap} [represents and warrants|warrants] that the Services will be performed in a "
        "[professional and workmanlike manner|timely, professional manner] [in accordance with "
        "generally accepted industry standards|by suitably qualified personnel].",
        "EXCEPT AS EXPRESSLY [SET OUT|PROVIDED] IN {agreement_upper}, {party_upper} PROVIDES "
        "{subject_upper} 'AS IS' AND DISCLAIMS ALL [OTHER|IMPLIED] WARRANTIES, INCLUDING "
        "[MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE|MERCHANTABILITY, FITNESS FOR "
        "PURPOSE AND NON-INFRINGEMENT].",
        "In the event of a breach of this warranty, {party} shall, at its option, [repair or "
        "replace the non-conforming items|re-perform the deficient Services|refund the fees "
        "paid for them] [within {notice} of notice|at no additional charge].",
        "Each party [represents and warrants|warrants] that it [has full power and authority|is "
        "duly authorised] to enter into {agreement} and that [doing so|its performance] will "
        "not [breach|conflict with] any other agreement [to which it is a party|binding on it].",
        "{party_cap} warrants that [the Goods|{subject}] [will be free from defects in materials "
        "and workmanship|will be of satisfactory quality and fit for purpose] for "
        "{warranty_period} [following delivery|from the date of shipment].",
        "{party_cap} warrants that {subject} [will not contain|shall be free of] [any viruses, "
        "malware or other harmful code|any disabling devices, time bombs or malicious code] "
        "[at the time of delivery|when delivered to {other}].",
        "The warranty [does not apply|shall not apply] to [defects caused by misuse, accident "
        "or unauthorised modification|any failure resulting from improper installation or use "
        "contrary to the Documentation][ by {other}| or by any third party].",
        "{party_cap} [represents|warrants] that [it has obtained all|the Products have all] "
        "[licences, permits and approvals|necessary regulatory approvals] [required|needed] "
        "[to supply {subject}|under applicable law].",
        "{party_cap} warrants that {subject} [will comply with|shall comply with] all "
        "applicable [laws and regulations|safety standards] [in force at the time of "
        "delivery|in the country of delivery].",
        "{other_cap} acknowledges that it has not relied on any [representation, warranty or "
        "statement|promise or assurance] [not expressly set out in|other than those contained"
        " in] {agreement}.",
        "[Any warranty claim|Claims under this warranty] [must be notified|shall be notified]"
        " to {party}[ in writing|] within {notice} of [discovery of the defect|the defect "
        "becoming apparent], [together with reasonable evidence|failing which the warranty "
        "shall lapse].",
        "{party_cap} [warrants|guarantees] that [the Deliverables|{subject}] [are "
        "original|will be new and unused] and [do not infringe|will not infringe] the [rights"
        " of any third party|intellectual property rights of others].",
    ),
    "assignment": (
        "Neither party may [assign|transfer] {agreement}[ or any of its rights or obligations "
        "hereunder| in whole or in part] without the prior written consent of the other "
        "party[, which shall not be unreasonably withheld|].",
        "[Notwithstanding the foregoing|However], either party may assign {agreement} [without "
        "consent|without the other party's consent] to [an affiliate|a successor][ in connection "
        "with a merger, acquisition or sale of all or substantially all of its assets|].",
        "Any [purported|attempted] assignment[ or transfer|] in violation of this Section shall "
        "be [null and void|void and of no effect].",
        "{agreement_cap} shall be binding upon and inure to the benefit of the parties and "
        "their respective [successors and permitted assigns|successors and assigns].",
        "{party_cap} may [subcontract|delegate] [any of its obligations|the performance of "
        "{subject}] [to a third party|to subcontractors] [only with|subject to] the prior "
        "written [consent|approval] of {other}, and shall remain [responsible|fully liable] for "
        "the acts of its subcontractors.",
        "A change of control of {party} shall be [deemed|treated as] an assignment [for the "
        "purposes of this Section|of {agreement}][ requiring the consent of {other}|].",
        "{party_cap} may [novate|transfer by novation] {agreement} to [any member of its group|"
        "a purchaser of its business] [by giving written notice to {other}|on {notice} notice], "
        "and {other} shall [execute|sign] any [documents|novation agreement] reasonably "
        "required[ for that purpose|].",
        "{party_cap} may assign its right to receive payment under {agreement} to [a bank or "
        "financial institution|a factoring company|its lenders] [without the consent of "
        "{other}|upon notice to {other}].",
        "{other_cap} [may not|shall not] [sell, transfer or otherwise dispose of|charge or "
        "encumber] [its rights|any interest] under {agreement} [without first obtaining the "
        "written consent of {party}|unless {party} agrees in writing].",
        "[Subject to this Section|Except as set out here], {agreement} [may not|cannot] be "
        "[assigned|transferred] by [operation of law|merger or otherwise] without consent[, "
        "and any such transfer shall be ineffective|].",
        "{party_cap} may [transfer|assign] {agreement} to [any entity that acquires|a buyer "
        "of] [the business unit to which it relates|substantially all of its assets] "
        "[provided that|on condition that] the [assignee|transferee] [agrees in writing to be"
        " bound by its terms|assumes all obligations under {agreement}].",
        "[No assignment|Any permitted assignment] shall [relieve|release] the [assigning "
        "party|assignor] of its obligations [accrued before the assignment|under "
        "{agreement}][ unless {other} agrees otherwise|].",
        "[Each party|{party_cap}] [shall give|will give] [the other party|{other}] [written "
        "notice|notice in writing] [of any assignment|of any transfer of {agreement}] [within"
        " {notice} after|no later than {notice} after] [it takes effect|the transfer].",
    ),
    "dispute_resolution": (
        "Any dispute arising out of or in connection with {agreement} shall be [finally "
        "resolved|settled] by [binding arbitration|arbitration] [administered by|under the "
        "rules of] [the International Chamber of Commerce|the London Court of International "
        "Arbitration|the American Arbitration Association|the Singapore International "
        "Arbitration Centre|JAMS] [by a sole arbitrator|by three arbitrators].",
        "The parties shall [first attempt|use good faith efforts] to resolve any dispute "
        "[through negotiation between|by referring it to] their [senior executives|respective "
        "project managers] [within {notice}|before commencing any proceedings].",
        "If a dispute is not resolved [by negotiation|within {notice}], the parties shall "
        "[attempt to settle it by|refer it to] mediation [in {city}|administered by a mutually "
        "agreed mediator] before [commencing arbitration|resorting to litigation].",
        "The seat of arbitration shall be {city}[, the language of the arbitration shall be "
        "English|] and [the award|any award] shall be final and binding on the parties.",
        "[Judgment on the award|Any arbitral award] [may be entered|may be enforced] in any "
        "court [having jurisdiction|of competent jurisdiction][ over the party against whom it "
        "is made|].",
        "Each party shall bear its own costs [of the arbitration|in any dispute resolution "
        "proceeding][, and the fees of the arbitrator shall be borne equally|, unless the "
        "tribunal decides otherwise].",
        "Each party hereby [waives|irrevocably waives] [any right to a jury trial|the right to "
        "participate in a class action] [in any proceeding|with respect to any dispute] arising "
        "out of {agreement}.",
        "Pending the resolution of any dispute, the parties shall [continue to perform|continue "
        "performing] their [respective obligations|obligations] under {agreement}[, and neither "
        "party may suspend performance|].",
        "[The tribunal|The arbitral tribunal] [shall consist of|will be composed of] [one "
        "arbitrator|three arbitrators] [appointed in accordance with the Rules|chosen by "
        "agreement of the parties][, each of whom shall be independent|].",
        "[Either party|A party] may [refer|submit] [any technical dispute|a dispute about the"
        " Specifications] to [an independent expert|an expert appointed by agreement], whose "
        "[decision|determination] shall be [final and binding|binding] [except in case of "
        "manifest error|on both parties].",
        "[Nothing in this Section prevents|This procedure shall not prevent] a party from "
        "[seeking urgent interim relief|applying for an injunction] [to protect its "
        "rights|pending the outcome of the arbitration].",
        "[A party|The party raising a dispute] [shall|must] [serve|give] a [Dispute "
        "Notice|notice of dispute] [setting out|describing] [the nature of the dispute and "
        "the relief sought|the matters in dispute] [before taking any further step|and the "
        "parties shall meet within {notice} to discuss it].",
        "[All|The] [arbitration proceedings|proceedings of the arbitration][ and any award|] "
        "[shall be kept confidential|are confidential] [except as required to enforce an "
        "award|save as required by law].",
    ),
}

_CHOICE = re.compile(r"\[([^\[\]]*)\]")


@dataclass(frozen=True)
class Clause:
    text: str
    label: str
    family: str  # "<label>/<template index>": the held-out split keeps a family together


def _slots(rng: random.Random) -> dict[str, str]:
    """One value per slot for one clause (repeated slots read the same)."""
    party, other = rng.sample(PARTIES, 2)
    jurisdiction, city = rng.choice(PLACES)
    agreement, subject = rng.choice(AGREEMENTS), rng.choice(SUBJECTS)
    return {
        "party": party,
        "other": other,
        "party_cap": party[0].upper() + party[1:],
        "other_cap": other[0].upper() + other[1:],
        "party_upper": party.upper(),
        "agreement": agreement,
        "agreement_cap": agreement[0].upper() + agreement[1:],
        "agreement_upper": agreement.upper(),
        "subject": subject,
        "subject_upper": subject.upper(),
        "notice": rng.choice(NOTICE),
        "years": rng.choice(YEARS),
        "warranty_period": rng.choice(WARRANTY_PERIODS),
        "jurisdiction": jurisdiction,
        "city": city,
        "amount": rng.choice(AMOUNTS),
        "region": rng.choice(REGIONS).format(other=other, state=rng.choice(STATES)),
        "field": rng.choice(FIELDS),
    }


def _fill(template: str, slots: dict[str, str], rng: random.Random) -> str:
    # Alternatives first (they may hold slots), then the slots.
    text = _CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), template)
    return text.format(**slots)


def _clause(label: str, template: str, rng: random.Random) -> str:
    slots = _slots(rng)
    text = _fill(template, slots, rng)
    if rng.random() < 0.2:
        text = rng.choice(PREFIXES).format(**slots) + text[0].lower() + text[1:]
    if label in SURVIVING_TYPES and rng.random() < 0.15:
        text += _fill(SURVIVAL, slots, rng)
    return text


def generate(seed: int = SEED, per_family: int = ROWS_PER_FAMILY) -> list[Clause]:
    """Every clause, ``per_family`` different texts per template, in a fixed order."""
    rng = random.Random(seed)
    clauses: list[Clause] = []
    seen: set[str] = set()
    for label, templates in TEMPLATES.items():
        for index, template in enumerate(templates):
            made, tries = 0, 0
            while made < per_family:
                tries += 1
                if tries > 100 * per_family:
                    raise RuntimeError(f"{label}/{index}: too few distinct wordings")
                text = _clause(label, template, rng)
                if text in seen:
                    continue
                seen.add(text)
                clauses.append(Clause(text, label, f"{label}/{index}"))
                made += 1
    return clauses


def families(seed: int = SEED) -> dict[str, str]:
    """Text -> family of every generated clause (for the held-out split)."""
    return {c.text: c.family for c in generate(seed)}


def write(path: Path = CSV_PATH, seed: int = SEED) -> int:
    """Write ``text,label`` rows to ``path``; return the number of rows."""
    clauses = generate(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows([c.text, c.label] for c in clauses)
    return len(clauses)


if __name__ == "__main__":
    print(f"wrote {write()} clauses to {CSV_PATH}")
