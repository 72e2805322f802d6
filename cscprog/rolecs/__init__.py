"""RoleCS: role-play synthesis of strategy-labelled dialogues from customer profiles and topics.

:mod:`cscprog.rolecs.roleplay` runs the five roles (planner, supporter assistant, supporter, customer
assistant, customer); :mod:`cscprog.rolecs.profiles` verbalises and de-duplicates profiles;
:mod:`cscprog.rolecs.judge` keeps the dialogues that pass the five quality criteria.
"""
