"""The reliability harnesses (run as scripts; tests/test_kill.py, test_run_folder.py,
test_bad_input.py and test_fuzz_rewards.py load them by path). kill_test.py matches
pytest's *_test.py pattern but is a harness, not a test module."""

collect_ignore = ["kill_test.py"]
