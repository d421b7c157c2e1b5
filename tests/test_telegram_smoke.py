"""The smallest end-to-end check of the Telegram channel: /start gets the first question."""


def test_start_gets_a_welcome_and_the_first_question(fake_api, start_bot):
    bot = start_bot(fake_api)
    fake_api.send_text(42, "/start")
    question = fake_api.wait_for_message(42, contains="Question 1 of")
    assert any(text.startswith("Pre-launch") for text, _ in fake_api.buttons(question))
    assert bot.stop() == 0
    assert fake_api.refusals == []
